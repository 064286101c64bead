package dev.enclave.server.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Files;
import java.sql.ResultSet;
import java.util.List;
import java.util.ArrayList;
import java.sql.Connection;
import java.sql.Statement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The hash chain: any edited, deleted or reordered entry is found and named, by the class and by the CLI. */
class AuditLogTest {

    @TempDir
    Path dir;

    Path fill(int n) throws Exception {
        Path db = dir.resolve("audit.sqlite");
        try (AuditLog log = new AuditLog(db)) {
            for (int i = 0; i < n; i++) log.append("alice", "auth.login", "session", "entry " + i, "127.0.0.1");
            assertTrue(log.verify().ok());
            assertEquals(n, log.verify().entries());
        }
        // reopening continues the same chain
        try (AuditLog log = new AuditLog(db)) {
            log.append("bob", "user.create", "carol", "role=client", "10.0.0.2");
            assertTrue(log.verify().ok());
        }
        return db;
    }

    static void sql(Path db, String s) throws Exception {
        try (Connection c = new org.sqlite.JDBC().connect("jdbc:sqlite:" + db, new java.util.Properties()); Statement st = c.createStatement()) {
            st.executeUpdate(s);
        }
    }

    static String[] cli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream old = System.out;
        System.setOut(new PrintStream(out, true));
        try {
            int code = dev.enclave.server.EnclaveMain.commandLine(false).execute(args);
            return new String[] {Integer.toString(code), out.toString()};
        } finally {
            System.setOut(old);
        }
    }

    @Test
    void intactChainVerifies() throws Exception {
        Path db = fill(10);
        String[] r = cli("audit", "verify", "--db", db.toString(), "--json");
        assertEquals("0", r[0]);
        assertTrue(r[1].contains("\"ok\":true") && r[1].contains("\"entries\":11"), r[1]);
    }

    @Test
    void anEditedEntryIsNamed() throws Exception {
        Path db = fill(10);
        sql(db, "UPDATE audit SET detail = 'nothing to see' WHERE seq = 4");
        AuditLog.Verification v = AuditLog.verify(db);
        assertFalse(v.ok());
        assertEquals(4, v.firstBad());
        assertTrue(v.reason().contains("modified"));
        String[] r = cli("audit", "verify", "--db", db.toString(), "--json");
        assertEquals("1", r[0]);
        assertTrue(r[1].contains("\"first_bad\":4"), r[1]);
    }

    @Test
    void aDeletedEntryIsNamed() throws Exception {
        Path db = fill(10);
        sql(db, "DELETE FROM audit WHERE seq = 6");
        AuditLog.Verification v = AuditLog.verify(db);
        assertFalse(v.ok());
        assertEquals(7, v.firstBad());
        assertTrue(v.reason().contains("deleted"), v.reason());
    }

    @Test
    void aDeletedEntryWithRenumberingIsStillFound() throws Exception {
        Path db = fill(10);
        sql(db, "DELETE FROM audit WHERE seq = 6");
        sql(db, "UPDATE audit SET seq = seq - 1 WHERE seq > 6");
        AuditLog.Verification v = AuditLog.verify(db);
        assertFalse(v.ok());
        assertEquals(6, v.firstBad());
    }

    @Test
    void reorderedEntriesAreNamed() throws Exception {
        Path db = fill(10);
        sql(db, "UPDATE audit SET seq = 100 WHERE seq = 3");
        sql(db, "UPDATE audit SET seq = 3 WHERE seq = 5");
        sql(db, "UPDATE audit SET seq = 5 WHERE seq = 100");
        AuditLog.Verification v = AuditLog.verify(db);
        assertFalse(v.ok());
        assertEquals(3, v.firstBad());
    }

    @Test
    void fieldBoundariesAreHashed() {
        // moving text from one field to the next must change the hash
        String a = AuditLog.hash(AuditLog.GENESIS, 1, 5, "ab", "c", "", "", "");
        String b = AuditLog.hash(AuditLog.GENESIS, 1, 5, "a", "bc", "", "", "");
        assertFalse(a.equals(b));
    }

    /**
     * An attacker who can write the database but not the key edits an entry and recomputes every hash after it:
     * with an unkeyed SHA-256 chain that passed; keyed, it is named.
     */
    @Test
    void aRecomputedChainDoesNotPassWithoutTheKey() throws Exception {
        Path db = fill(6);
        List<String[]> rows = new ArrayList<>();
        try (Connection c = new org.sqlite.JDBC().connect("jdbc:sqlite:" + db, new java.util.Properties());
             Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT * FROM audit ORDER BY seq")) {
            while (rs.next()) rows.add(new String[] {rs.getString("seq"), rs.getString("at"), rs.getString("actor"),
                    rs.getString("action"), rs.getString("target"), rs.getString("detail"), rs.getString("ip"), rs.getString("prev_hash")});
        }
        String prev = rows.get(2)[7];
        for (int i = 2; i < rows.size(); i++) {
            String[] r = rows.get(i);
            String detail = i == 2 ? "nothing happened" : r[5];
            String h = AuditLog.hash(prev, Long.parseLong(r[0]), Long.parseLong(r[1]), r[2], r[3], r[4], detail, r[6]);
            sql(db, "UPDATE audit SET detail = '" + detail + "', prev_hash = '" + prev + "', hash = '" + h + "' WHERE seq = " + r[0]);
            prev = h;
        }
        Files.writeString(db.resolveSibling("audit.sqlite.head"), rows.size() + " " + prev + "\n"); // even the head rewritten
        AuditLog.Verification v = AuditLog.verify(db);
        assertFalse(v.ok());
        assertEquals(3, v.firstBad());
        assertTrue(v.keyed());
        // and without the key file nothing keyed passes either
        Files.move(db.resolveSibling("audit.key"), dir.resolve("elsewhere.key"));
        assertFalse(AuditLog.verify(db).ok());
    }

    /** Entries cut off the end leave a shorter chain that holds: the recorded head finds it. */
    @Test
    void entriesCutOffTheEndAreFound() throws Exception {
        Path db = fill(6);
        sql(db, "DELETE FROM audit WHERE seq >= 6");
        AuditLog.Verification v = AuditLog.verify(db);
        assertFalse(v.ok(), v.toString());
        assertTrue(v.reason().contains("cut off"), v.reason());
        String[] out = cli("audit", "verify", "--db", db.toString(), "--json");
        assertEquals("1", out[0]);
        assertTrue(out[1].contains("\"keyed\":true"), out[1]);
        // the key file is the owner's alone
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(db.resolveSibling("audit.key"))));
    }
}
