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
 * The tamper-evident audit log: one SQLite table where every entry carries the SHA-256 of the previous entry's
 * hash and its own fields. Editing an entry breaks its hash; deleting one breaks the next entry's link;
 * reordering breaks both. {@link #verify} names the first entry that does not hold. The table is append-only
 * from the application's side (no UPDATE or DELETE is ever issued).
 */
public final class AuditLog implements AutoCloseable {

    public static final String GENESIS = "0".repeat(64);

    public record Entry(long seq, long at, String actor, String action, String target, String detail, String ip,
                        String prevHash, String hash) {
    }

    /** Outcome of a verification: {@code firstBad} is the sequence number of the first entry that fails, or -1. */
    public record Verification(boolean ok, long entries, long firstBad, String reason, String headHash) {
    }

    private final Connection db;
    private String head;
    private long lastSeq;

    public AuditLog(Path file) throws SQLException {
        db = dev.enclave.rag.store.SqliteFiles.open(file);
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
    }

    /** Appends one entry; returns it. */
    public synchronized Entry append(String actor, String action, String target, String detail, String ip)
            throws SQLException {
        long seq = lastSeq + 1;
        long at = System.currentTimeMillis();
        String a = nz(actor), ac = nz(action), t = nz(target), d = nz(detail), i = nz(ip);
        String hash = hash(head, seq, at, a, ac, t, d, i);
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
        return e;
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
        return verify(db);
    }

    /** Verifies the chain in any audit database, e.g. a copy handed to an auditor (used by the CLI). */
    public static Verification verify(Path file) throws SQLException {
        if (!Files.isRegularFile(file)) throw new SQLException("no audit database at " + file);
        try (Connection c = dev.enclave.rag.store.SqliteFiles.openReadOnly(file)) {
            return verify(c);
        }
    }

    private static Verification verify(Connection c) throws SQLException {
        String prev = GENESIS;
        long expectedSeq = 1;
        long n = 0;
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT * FROM audit ORDER BY seq")) {
            while (rs.next()) {
                Entry e = entry(rs);
                n++;
                if (e.seq() != expectedSeq) {
                    return new Verification(false, n, e.seq(), "entry " + e.seq() + " follows entry " + (expectedSeq - 1)
                            + ": entries between them were deleted", prev);
                }
                if (!e.prevHash().equals(prev)) {
                    return new Verification(false, n, e.seq(), "entry " + e.seq()
                            + " does not link to the entry before it (deleted or reordered)", prev);
                }
                String h = hash(e.prevHash(), e.seq(), e.at(), e.actor(), e.action(), e.target(), e.detail(), e.ip());
                if (!h.equals(e.hash())) {
                    return new Verification(false, n, e.seq(), "entry " + e.seq() + " was modified after it was written", prev);
                }
                prev = e.hash();
                expectedSeq++;
            }
        }
        return new Verification(true, n, -1, "chain intact", prev);
    }

    static String hash(String prev, long seq, long at, String actor, String action, String target, String detail,
                       String ip) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(prev.getBytes(StandardCharsets.US_ASCII));
            for (String f : new String[] {Long.toString(seq), Long.toString(at), actor, action, target, detail, ip}) {
                byte[] b = f.getBytes(StandardCharsets.UTF_8);
                // length-prefixed so that moving text between fields changes the hash
                md.update((b.length + ":").getBytes(StandardCharsets.US_ASCII));
                md.update(b);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
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
