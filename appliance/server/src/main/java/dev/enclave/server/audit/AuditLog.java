package dev.enclave.server.audit;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * The tamper-evident audit log: one SQLite table where every entry carries a MAC of the previous entry's hash and
 * its own fields. Editing an entry breaks its hash; deleting one breaks the next entry's link; reordering breaks
 * both. {@link #verify} names the first entry that does not hold. The table is append-only from the application's
 * side (no UPDATE or DELETE is ever issued).
 *
 * <p>Keyed: the MAC is HMAC-SHA256 under a key kept outside the database ({@link AuditKey}), so whoever can write
 * the database file but not the key cannot recompute the chain after an edit. The newest entry's sequence number
 * and hash are also written outside the database ({@code audit.head}) after every append, so cutting entries off
 * the end, which leaves a shorter chain that holds, is found too. Entries written before the key existed (logs of
 * earlier versions) stay plain SHA-256 and are checked as such.
 */
public final class AuditLog implements AutoCloseable {

    public static final String GENESIS = "0".repeat(64);

    public record Entry(long seq, long at, String actor, String action, String target, String detail, String ip,
                        String prevHash, String hash) {
    }

    /** Outcome of a verification: {@code firstBad} is the sequence number of the first entry that fails, or -1. */
    public record Verification(boolean ok, long entries, long firstBad, String reason, String headHash, boolean keyed) {
    }

    private final Connection db;
    private final AuditKey key;
    private final Path headFile;
    private String head;
    private long lastSeq;

    /** The log in {@code file}, keyed by {@code audit.key} beside it (made on first use). */
    public AuditLog(Path file) throws SQLException {
        this(file, file.resolveSibling("audit.key"));
    }

    /** The log in {@code file}, keyed by {@code keyFile} (made on first use, readable by the owner only). */
    public AuditLog(Path file, Path keyFile) throws SQLException {
        db = dev.enclave.rag.store.SqliteFiles.open(file);
        headFile = file.resolveSibling(file.getFileName() + ".head");
        try (Statement s = db.createStatement()) {
            s.execute("""
                    CREATE TABLE IF NOT EXISTS audit (
                        seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
                        target TEXT NOT NULL, detail TEXT NOT NULL, ip TEXT NOT NULL,
                        prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""");
            try (ResultSet rs = s.executeQuery("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")) {
                if (rs.next()) {
                    lastSeq = rs.getLong(1);
                    head = rs.getString(2);
                } else {
                    lastSeq = 0;
                    head = GENESIS;
                }
            }
        }
        try {
            key = AuditKey.openOrCreate(keyFile, lastSeq + 1);
            if (!Files.exists(headFile)) writeHead();
        } catch (java.io.IOException e) {
            db.close();
            throw new SQLException("cannot open the audit key " + keyFile + ": " + e.getMessage(), e);
        }
    }

    /** Appends one entry; returns it. */
    public synchronized Entry append(String actor, String action, String target, String detail, String ip)
            throws SQLException {
        long seq = lastSeq + 1;
        long at = System.currentTimeMillis();
        String a = nz(actor), ac = nz(action), t = nz(target), d = nz(detail), i = nz(ip);
        String hash = key.mac(head, seq, at, a, ac, t, d, i);
        try (PreparedStatement p = db.prepareStatement(
                "INSERT INTO audit(seq, at, actor, action, target, detail, ip, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)")) {
            p.setLong(1, seq);
            p.setLong(2, at);
            p.setString(3, a);
            p.setString(4, ac);
            p.setString(5, t);
            p.setString(6, d);
            p.setString(7, i);
            p.setString(8, head);
            p.setString(9, hash);
            p.executeUpdate();
        }
        Entry e = new Entry(seq, at, a, ac, t, d, i, head, hash);
        head = hash;
        lastSeq = seq;
        try {
            writeHead();
        } catch (java.io.IOException ex) {
            throw new SQLException("cannot record the audit head: " + ex.getMessage(), ex);
        }
        return e;
    }

    /** The newest entry, outside the database: written whole to a temporary file, then moved over the old one. */
    private void writeHead() throws java.io.IOException {
        Path tmp = headFile.resolveSibling(headFile.getFileName() + ".tmp");
        Files.writeString(tmp, lastSeq + " " + head + "\n", StandardCharsets.US_ASCII);
        Files.move(tmp, headFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** Entries, newest first, optionally filtered by actor and/or action (exact match; null = any). */
    public synchronized List<Entry> list(String actor, String action, int limit, int offset) throws SQLException {
        StringBuilder sql = new StringBuilder("SELECT * FROM audit WHERE 1=1");
        List<String> args = new ArrayList<>();
        if (actor != null && !actor.isBlank()) {
            sql.append(" AND actor = ?");
            args.add(actor);
        }
        if (action != null && !action.isBlank()) {
            sql.append(" AND action = ?");
            args.add(action);
        }
        sql.append(" ORDER BY seq DESC LIMIT ? OFFSET ?");
        List<Entry> out = new ArrayList<>();
        try (PreparedStatement p = db.prepareStatement(sql.toString())) {
            int k = 1;
            for (String a : args) p.setString(k++, a);
            p.setInt(k++, limit);
            p.setInt(k, offset);
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) out.add(entry(rs));
            }
        }
        return out;
    }

    public synchronized Verification verify() throws SQLException {
        return verify(db, key, headFile);
    }

    /** Verifies an audit database with the key and head beside it (used by the CLI). */
    public static Verification verify(Path file) throws SQLException {
        return verify(file, file.resolveSibling("audit.key"), file.resolveSibling(file.getFileName() + ".head"));
    }

    /**
     * Verifies the chain in any audit database, e.g. a copy handed to an auditor with its key and head. Without
     * the key file nothing keyed can be checked: that is a failure, not a pass.
     */
    public static Verification verify(Path file, Path keyFile, Path headFile) throws SQLException {
        if (!Files.isRegularFile(file)) throw new SQLException("no audit database at " + file);
        AuditKey key;
        try {
            key = Files.exists(keyFile) ? AuditKey.read(keyFile) : null;
        } catch (java.io.IOException e) {
            throw new SQLException("cannot read the audit key " + keyFile + ": " + e.getMessage(), e);
        }
        try (Connection c = dev.enclave.rag.store.SqliteFiles.openReadOnly(file)) {
            return verify(c, key, headFile);
        }
    }

    private static Verification verify(Connection c, AuditKey key, Path headFile) throws SQLException {
        Verification chain = verifyChain(c, key);
        if (!chain.ok() || headFile == null || !Files.exists(headFile)) return chain;
        String[] recorded;
        try {
            recorded = Files.readString(headFile, StandardCharsets.US_ASCII).trim().split(" ");
        } catch (java.io.IOException e) {
            throw new SQLException("cannot read the audit head " + headFile + ": " + e.getMessage(), e);
        }
        long seq;
        try {
            seq = Long.parseLong(recorded[0]);
        } catch (NumberFormatException e) {
            return new Verification(false, chain.entries(), 0, "the recorded head " + headFile + " is unreadable", chain.headHash(), chain.keyed());
        }
        if (seq == 0) return chain;
        try (PreparedStatement p = c.prepareStatement("SELECT hash FROM audit WHERE seq = ?")) {
            p.setLong(1, seq);
            try (ResultSet rs = p.executeQuery()) {
                if (!rs.next()) {
                    return new Verification(false, chain.entries(), chain.entries() + 1, "the log ends at entry " + chain.entries()
                            + " but entry " + seq + " was recorded as written: entries were cut off the end", chain.headHash(), chain.keyed());
                }
                if (recorded.length < 2 || !rs.getString(1).equals(recorded[1])) {
                    return new Verification(false, chain.entries(), seq, "entry " + seq + " is not the entry recorded as written there",
                            chain.headHash(), chain.keyed());
                }
            }
        }
        return chain;
    }

    private static Verification verifyChain(Connection c, AuditKey key) throws SQLException {
        String prev = GENESIS;
        long expectedSeq = 1;
        long n = 0;
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT * FROM audit ORDER BY seq")) {
            while (rs.next()) {
                Entry e = entry(rs);
                n++;
                if (e.seq() != expectedSeq) {
                    return new Verification(false, n, e.seq(), "entry " + e.seq() + " follows entry " + (expectedSeq - 1)
                            + ": entries between them were deleted", prev, key != null);
                }
                if (!e.prevHash().equals(prev)) {
                    return new Verification(false, n, e.seq(), "entry " + e.seq()
                            + " does not link to the entry before it (deleted or reordered)", prev, key != null);
                }
                boolean keyedEntry = key != null ? e.seq() >= key.fromSeq() : false;
                if (key == null && !hash(e.prevHash(), e.seq(), e.at(), e.actor(), e.action(), e.target(), e.detail(), e.ip()).equals(e.hash())) {
                    return new Verification(false, n, e.seq(), "entry " + e.seq() + " does not verify without the audit key "
                            + "(give the key file, or it was modified)", prev, false);
                }
                String h = key == null ? e.hash() : keyedEntry ? key.mac(e.prevHash(), e.seq(), e.at(), e.actor(), e.action(), e.target(), e.detail(), e.ip())
                        : hash(e.prevHash(), e.seq(), e.at(), e.actor(), e.action(), e.target(), e.detail(), e.ip());
                if (!h.equals(e.hash())) {
                    return new Verification(false, n, e.seq(), "entry " + e.seq() + " was modified after it was written", prev, key != null);
                }
                prev = e.hash();
                expectedSeq++;
            }
        }
        return new Verification(true, n, -1, key != null ? "chain intact (keyed)" : "chain intact (unkeyed: no audit key given)", prev, key != null);
    }

    /** The unkeyed SHA-256 of an entry (logs written before the key existed). */
    static String hash(String prev, long seq, long at, String actor, String action, String target, String detail,
                       String ip) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(entryBytes(prev, seq, at, actor, action, target, detail, ip));
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** What an entry's hash or MAC covers: the previous hash, then each field length-prefixed. */
    static byte[] entryBytes(String prev, long seq, long at, String actor, String action, String target, String detail,
                             String ip) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.writeBytes(prev.getBytes(StandardCharsets.US_ASCII));
        for (String f : new String[] {Long.toString(seq), Long.toString(at), actor, action, target, detail, ip}) {
            byte[] b = f.getBytes(StandardCharsets.UTF_8);
            // length-prefixed so that moving text between fields changes the hash
            out.writeBytes((b.length + ":").getBytes(StandardCharsets.US_ASCII));
            out.writeBytes(b);
        }
        return out.toByteArray();
    }

    private static Entry entry(ResultSet rs) throws SQLException {
        return new Entry(rs.getLong("seq"), rs.getLong("at"), rs.getString("actor"), rs.getString("action"),
                rs.getString("target"), rs.getString("detail"), rs.getString("ip"), rs.getString("prev_hash"),
                rs.getString("hash"));
    }

    private static String nz(String s) {
        return s == null ? "" : s;
    }

    @Override
    public synchronized void close() throws SQLException {
        db.close();
    }
}
