package dev.enclave.server.security;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * Users and API keys in SQLite ({@code security.sqlite}). Passwords are Argon2id hashes; an API key is shown once
 * at creation ({@code ek_<id>_<secret>}) and stored as the SHA-256 of its 256-bit secret (a fast hash is right for
 * a random secret; slow hashes are for guessable passwords). Failed sign-ins are counted by {@link LoginThrottle}.
 */
public final class UserStore implements AutoCloseable {


    public record User(long id, String name, Role role, boolean disabled, int failures, long lockedUntil) {
    }

    public record ApiKey(String id, String user, Role role, String scopes, long expiresAt, boolean revoked,
                         long createdAt) {
        public boolean usable(long now) {
            return !revoked && (expiresAt == 0 || now < expiresAt);
        }
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    private final Connection db;

    public UserStore(Path file) throws SQLException {
        db = dev.enclave.rag.store.SqliteFiles.open(file);
        try (Statement s = db.createStatement()) {
            s.execute("""
                    CREATE TABLE IF NOT EXISTS users (
                        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, password TEXT NOT NULL, role TEXT NOT NULL,
                        disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
                        locked_until INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL)""");
            s.execute("""
                    CREATE TABLE IF NOT EXISTS api_keys (
                        id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), secret_sha256 TEXT NOT NULL,
                        scopes TEXT NOT NULL, expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
                        created_at INTEGER NOT NULL)""");
            s.execute("""
                    CREATE TABLE IF NOT EXISTS conversations (
                        user_name TEXT PRIMARY KEY, messages TEXT NOT NULL, updated_at INTEGER NOT NULL)""");
        }
    }

    /** The panel's chat history of one user (JSON array of messages), kept server-side. */
    public synchronized String conversation(String user) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT messages FROM conversations WHERE user_name = ?")) {
            p.setString(1, user);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? rs.getString(1) : "[]";
            }
        }
    }

    public synchronized void saveConversation(String user, String messagesJson) throws SQLException {
        exec("""
                INSERT INTO conversations(user_name, messages, updated_at) VALUES (?,?,?)
                ON CONFLICT(user_name) DO UPDATE SET messages = excluded.messages, updated_at = excluded.updated_at""",
                user, messagesJson, System.currentTimeMillis());
    }

    public synchronized boolean hasAdmin() throws SQLException {
        try (Statement s = db.createStatement();
             ResultSet rs = s.executeQuery("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0")) {
            return rs.getLong(1) > 0;
        }
    }

    public static void checkPassword(String password) {
        if (password == null || password.length() < 12) {
            throw new IllegalArgumentException("a password needs at least 12 characters");
        }
        if (password.length() > 256) throw new IllegalArgumentException("a password has at most 256 characters");
    }

    public synchronized User create(String name, String password, Role role) throws SQLException {
        if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")) {
            throw new IllegalArgumentException("a user name is 1-64 letters, digits, '.', '_', '@' or '-'");
        }
        checkPassword(password);
        if (find(name).isPresent()) throw new IllegalArgumentException("user '" + name + "' already exists");
        try (PreparedStatement p = db.prepareStatement(
                "INSERT INTO users(name, password, role, created_at) VALUES (?,?,?,?)")) {
            p.setString(1, name);
            p.setString(2, PasswordHasher.hash(password));
            p.setString(3, role.id());
            p.setLong(4, System.currentTimeMillis());
            p.executeUpdate();
        }
        return find(name).orElseThrow();
    }

    public synchronized Optional<User> find(String name) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT * FROM users WHERE name = ?")) {
            p.setString(1, name);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? Optional.of(user(rs)) : Optional.empty();
            }
        }
    }

    public synchronized List<User> users() throws SQLException {
        List<User> out = new ArrayList<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("SELECT * FROM users ORDER BY name")) {
            while (rs.next()) out.add(user(rs));
        }
        return out;
    }

    private static User user(ResultSet rs) throws SQLException {
        return new User(rs.getLong("id"), rs.getString("name"), Role.of(rs.getString("role")),
                rs.getInt("disabled") != 0, rs.getInt("failures"), rs.getLong("locked_until"));
    }

    /** Outcome of a sign-in attempt. */
    public enum Login { OK, BAD_CREDENTIALS, DISABLED }

    /**
     * Checks a password. Unknown users cost the same Argon2 work as known ones, so timing does not reveal which
     * names exist.
     */
    public synchronized Login login(String name, String password, long now) throws SQLException {
        Optional<User> u = find(name == null ? "" : name);
        String stored = null;
        if (u.isPresent()) {
            try (PreparedStatement p = db.prepareStatement("SELECT password FROM users WHERE id = ?")) {
                p.setLong(1, u.get().id());
                try (ResultSet rs = p.executeQuery()) {
                    rs.next();
                    stored = rs.getString(1);
                }
            }
        }
        boolean match = PasswordHasher.verify(password == null ? "" : password,
                stored != null ? stored : PasswordHasher.TIMING_DUMMY);
        // locking is per (user, address) in LoginThrottle, for known and unknown names alike
        if (u.isEmpty() || !match) return Login.BAD_CREDENTIALS;
        if (u.get().disabled()) return Login.DISABLED;
        return Login.OK;
    }

    public synchronized void setPassword(String name, String password) throws SQLException {
        checkPassword(password);
        User u = find(name).orElseThrow(() -> new IllegalArgumentException("no user '" + name + "'"));
        exec("UPDATE users SET password = ?, failures = 0, locked_until = 0 WHERE id = ?", PasswordHasher.hash(password), u.id());
    }

    public synchronized void setRole(String name, Role role) throws SQLException {
        User u = find(name).orElseThrow(() -> new IllegalArgumentException("no user '" + name + "'"));
        if (u.role() == Role.ADMIN && role != Role.ADMIN) {
            long admins = users().stream().filter(x -> x.role() == Role.ADMIN && !x.disabled()).count();
            if (admins <= 1) throw new IllegalArgumentException("the last admin cannot lose the admin role");
        }
        exec("UPDATE users SET role = ? WHERE id = ?", role.id(), u.id());
    }

    public synchronized void setDisabled(String name, boolean disabled) throws SQLException {
        User u = find(name).orElseThrow(() -> new IllegalArgumentException("no user '" + name + "'"));
        exec("UPDATE users SET disabled = ? WHERE id = ?", disabled ? 1 : 0, u.id());
        if (disabled) exec("UPDATE api_keys SET revoked = 1 WHERE user_id = ?", u.id());
    }

    // ---- API keys

    /** Creates a key; returns {@code [key id, full key shown once]}. */
    public synchronized String[] createKey(String userName, String scopes, long expiresAt) throws SQLException {
        if (expiresAt < 0) throw new IllegalArgumentException("an API key's expiry must be in the future (or 0: never)");
        if (expiresAt != 0 && expiresAt <= System.currentTimeMillis()) throw new IllegalArgumentException("an API key's expiry must be in the future");
        scopes = KeyScopes.normalize(scopes);
        User u = find(userName).orElseThrow(() -> new IllegalArgumentException("no user '" + userName + "'"));
        byte[] idBytes = new byte[6];
        byte[] secret = new byte[32];
        RANDOM.nextBytes(idBytes);
        RANDOM.nextBytes(secret);
        String id = HexFormat.of().formatHex(idBytes);
        String secretText = Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
        try (PreparedStatement p = db.prepareStatement(
                "INSERT INTO api_keys(id, user_id, secret_sha256, scopes, expires_at, created_at) VALUES (?,?,?,?,?,?)")) {
            p.setString(1, id);
            p.setLong(2, u.id());
            p.setString(3, sha256(secretText));
            p.setString(4, scopes);
            p.setLong(5, expiresAt);
            p.setLong(6, System.currentTimeMillis());
            p.executeUpdate();
        }
        return new String[] {id, "ek_" + id + "_" + secretText};
    }

    /** The user behind a presented key, if the key exists, matches, is not revoked or expired, and its user is enabled. */
    public synchronized Optional<ApiKey> authenticateKey(String presented, long now) throws SQLException {
        if (presented == null || !presented.startsWith("ek_")) return Optional.empty();
        String[] parts = presented.split("_", 3);
        if (parts.length != 3) return Optional.empty();
        try (PreparedStatement p = db.prepareStatement("""
                SELECT k.*, u.name, u.role, u.disabled FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?""")) {
            p.setString(1, parts[1]);
            try (ResultSet rs = p.executeQuery()) {
                if (!rs.next()) return Optional.empty();
                boolean match = MessageDigest.isEqual(rs.getString("secret_sha256").getBytes(StandardCharsets.US_ASCII),
                        sha256(parts[2]).getBytes(StandardCharsets.US_ASCII));
                ApiKey k = key(rs);
                if (!match || !k.usable(now) || rs.getInt("disabled") != 0) return Optional.empty();
                return Optional.of(k);
            }
        }
    }

    public synchronized List<ApiKey> keys() throws SQLException {
        List<ApiKey> out = new ArrayList<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery(
                "SELECT k.*, u.name, u.role FROM api_keys k JOIN users u ON u.id = k.user_id ORDER BY k.created_at DESC")) {
            while (rs.next()) out.add(key(rs));
        }
        return out;
    }

    public synchronized boolean revokeKey(String id) throws SQLException {
        return exec("UPDATE api_keys SET revoked = 1 WHERE id = ?", id) > 0;
    }

    private static ApiKey key(ResultSet rs) throws SQLException {
        return new ApiKey(rs.getString("id"), rs.getString("name"), Role.of(rs.getString("role")), rs.getString("scopes"),
                rs.getLong("expires_at"), rs.getInt("revoked") != 0, rs.getLong("created_at"));
    }

    private int exec(String sql, Object... args) throws SQLException {
        try (PreparedStatement p = db.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
            return p.executeUpdate();
        }
    }

    static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public synchronized void close() throws SQLException {
        db.close();
    }
}
