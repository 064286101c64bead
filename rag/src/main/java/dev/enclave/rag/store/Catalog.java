package dev.enclave.rag.store;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The record of what was ingested, in one SQLite file (WAL mode): collections with their access rules,
 * documents and their versions, pages, chunks (text and embedding, so the Lucene index can always be rebuilt
 * without re-reading sources), ingestion jobs and per-file errors. Schema changes are numbered migrations.
 *
 * <p>A document's {@code state} is what keeps SQLite and Lucene consistent across a crash: it is written
 * {@code pending} (or {@code deleting}) before Lucene is touched and {@code indexed} only after Lucene has
 * committed; recovery replays whatever is not {@code indexed}.
 */
public final class Catalog implements AutoCloseable {

    static final String[] MIGRATIONS = {
        // 1: first schema
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE collections (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
            read_roles TEXT NOT NULL DEFAULT '', read_users TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL REFERENCES collections(id),
            source TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', media_type TEXT NOT NULL DEFAULT '',
            size INTEGER NOT NULL DEFAULT 0, mtime INTEGER NOT NULL DEFAULT 0, sha256 TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL DEFAULT 1, state TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (collection_id, source));
        CREATE INDEX documents_state ON documents(state);
        CREATE INDEX documents_sha ON documents(collection_id, sha256);
        CREATE TABLE document_versions (
            document_id INTEGER NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
            ingested_at INTEGER NOT NULL, PRIMARY KEY (document_id, version));
        CREATE TABLE pages (
            document_id INTEGER NOT NULL, number INTEGER NOT NULL, char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL, PRIMARY KEY (document_id, number));
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL, ordinal INTEGER NOT NULL,
            page_start INTEGER NOT NULL, page_end INTEGER NOT NULL, char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL, heading TEXT NOT NULL DEFAULT '', text TEXT NOT NULL, embedding BLOB);
        CREATE INDEX chunks_document ON chunks(document_id);
        CREATE TABLE ingestion_jobs (
            id INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL, kind TEXT NOT NULL, root TEXT NOT NULL,
            state TEXT NOT NULL, files_total INTEGER NOT NULL DEFAULT 0, files_done INTEGER NOT NULL DEFAULT 0,
            bytes_total INTEGER NOT NULL DEFAULT 0, bytes_done INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            finished_at INTEGER);
        CREATE TABLE ingestion_errors (
            id INTEGER PRIMARY KEY, job_id INTEGER, collection_id INTEGER NOT NULL, source TEXT NOT NULL,
            reason TEXT NOT NULL, at INTEGER NOT NULL);
        """,
        // 2: document ids are never reused (a deleted document's citations must not come to name another):
        // allocated from an AUTOINCREMENT sequence, which survives deletion, starting above every id in use
        """
        CREATE TABLE document_ids (id INTEGER PRIMARY KEY AUTOINCREMENT);
        INSERT INTO document_ids(id) SELECT id FROM documents ORDER BY id DESC LIMIT 1;
        DELETE FROM document_ids;
        """,
    };

    public record CollectionRow(long id, String name, String description, List<String> readRoles,
                                List<String> readUsers) {
        /** Empty role and user lists mean any signed-in principal may read. */
        public boolean readableBy(Principal p) {
            if (p.isAdmin()) return true;
            if (readRoles.isEmpty() && readUsers.isEmpty()) return true;
            if (readUsers.contains(p.user())) return true;
            for (String r : p.roles()) if (readRoles.contains(r)) return true;
            return false;
        }
    }

    public record DocumentRow(long id, long collectionId, String source, String title, String mediaType, long size,
                              long mtime, String sha256, int version, String state) {
    }

    public record ChunkRow(long id, long documentId, int ordinal, int pageStart, int pageEnd, int charStart,
                           int charEnd, String heading, String text, float[] embedding) {
    }

    public record JobRow(long id, long collectionId, String kind, String root, String state, long filesTotal,
                         long filesDone, long bytesTotal, long bytesDone, long errors, long startedAt,
                         long updatedAt, Long finishedAt) {
    }

    public record ErrorRow(long id, Long jobId, String source, String reason, long at) {
    }

    private final Connection db;
    private final Path file;

    public Catalog(Path file) throws SQLException {
        this.file = file.toAbsolutePath();
        db = SqliteFiles.open(file);
        migrate();
    }

    private void migrate() throws SQLException {
        int version;
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("PRAGMA user_version")) {
            version = rs.getInt(1);
        }
        if (version > MIGRATIONS.length) {
            throw new SQLException("catalog schema version " + version + " is newer than this software ("
                    + MIGRATIONS.length + "); refusing to touch it");
        }
        for (int v = version; v < MIGRATIONS.length; v++) {
            db.setAutoCommit(false);
            try (Statement s = db.createStatement()) {
                for (String stmt : MIGRATIONS[v].split(";")) {
                    if (!stmt.isBlank()) s.execute(stmt);
                }
                s.execute("PRAGMA user_version = " + (v + 1));
                db.commit();
            } catch (SQLException e) {
                db.rollback();
                throw e;
            } finally {
                db.setAutoCommit(true);
            }
        }
    }

    public int schemaVersion() throws SQLException {
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("PRAGMA user_version")) {
            return rs.getInt(1);
        }
    }

    /** Runs {@code work} in one transaction. */
    /**
     * SQLite rolls a transaction back by itself when a write fails for want of space, and what follows only says
     * "no transaction is active": say what happened instead when the disk is (nearly) full.
     */
    private SQLException explained(SQLException e) {
        long free = -1;
        try {
            free = java.nio.file.Files.getFileStore(file).getUsableSpace();
        } catch (java.io.IOException | RuntimeException ignored) {
            // unknown
        }
        if (free < 0 || free >= (1 << 20)) return e;
        return new SQLException("the catalog " + file + " could not be written: No space left on device (" + free
                + " bytes free)", e);
    }

    public synchronized <T> T transaction(SqlWork<T> work) throws SQLException {
        db.setAutoCommit(false);
        T r;
        try {
            r = work.run(db);
            db.commit();
        } catch (SQLException | RuntimeException e) {
            try {
                db.rollback();
            } catch (SQLException rb) {
                // SQLite may have rolled back already (a full disk does): the first error is the one to tell
                e.addSuppressed(rb);
            }
            try {
                db.setAutoCommit(true);
            } catch (SQLException ac) {
                e.addSuppressed(ac);
            }
            if (e instanceof SQLException q) throw explained(q);
            throw (RuntimeException) e;
        }
        try {
            db.setAutoCommit(true);
        } catch (SQLException e) {
            throw explained(e);
        }
        return r;
    }

    @FunctionalInterface
    public interface SqlWork<T> {
        T run(Connection c) throws SQLException;
    }

    // ---- meta

    public synchronized Optional<String> meta(String key) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT value FROM meta WHERE key = ?")) {
            p.setString(1, key);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? Optional.of(rs.getString(1)) : Optional.empty();
            }
        }
    }

    public synchronized void setMeta(String key, String value) throws SQLException {
        try (PreparedStatement p = db.prepareStatement(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")) {
            p.setString(1, key);
            p.setString(2, value);
            p.executeUpdate();
        }
    }

    // ---- collections

    public synchronized CollectionRow createCollection(String name, String description, List<String> readRoles,
                                                       List<String> readUsers) throws SQLException {
        if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
            throw new IllegalArgumentException("collection name must be 1-64 letters, digits, '.', '_' or '-'");
        }
        try (PreparedStatement p = db.prepareStatement(
                "INSERT INTO collections(name, description, read_roles, read_users, created_at) VALUES (?,?,?,?,?)",
                Statement.RETURN_GENERATED_KEYS)) {
            p.setString(1, name);
            p.setString(2, description == null ? "" : description);
            p.setString(3, String.join(",", readRoles));
            p.setString(4, String.join(",", readUsers));
            p.setLong(5, System.currentTimeMillis());
            p.executeUpdate();
        } catch (SQLException e) {
            if (e.getMessage() != null && e.getMessage().contains("UNIQUE")) {
                throw new IllegalArgumentException("collection '" + name + "' already exists");
            }
            throw e;
        }
        return collection(name).orElseThrow();
    }

    public synchronized Optional<CollectionRow> collection(String name) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT * FROM collections WHERE name = ?")) {
            p.setString(1, name);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? Optional.of(collectionRow(rs)) : Optional.empty();
            }
        }
    }

    public synchronized Optional<CollectionRow> collection(long id) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT * FROM collections WHERE id = ?")) {
            p.setLong(1, id);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? Optional.of(collectionRow(rs)) : Optional.empty();
            }
        }
    }

    public synchronized List<CollectionRow> collections() throws SQLException {
        List<CollectionRow> out = new ArrayList<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("SELECT * FROM collections ORDER BY name")) {
            while (rs.next()) out.add(collectionRow(rs));
        }
        return out;
    }

    public synchronized void deleteCollectionRow(long id) throws SQLException {
        transaction(c -> {
            exec(c, "DELETE FROM ingestion_errors WHERE collection_id = ?", id);
            exec(c, "DELETE FROM ingestion_jobs WHERE collection_id = ?", id);
            exec(c, "DELETE FROM collections WHERE id = ?", id);
            return null;
        });
    }

    private static CollectionRow collectionRow(ResultSet rs) throws SQLException {
        return new CollectionRow(rs.getLong("id"), rs.getString("name"), rs.getString("description"),
                split(rs.getString("read_roles")), split(rs.getString("read_users")));
    }

    private static List<String> split(String csv) {
        if (csv == null || csv.isBlank()) return List.of();
        return List.of(csv.split(","));
    }

    // ---- documents

    public synchronized Optional<DocumentRow> document(long id) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT * FROM documents WHERE id = ?")) {
            p.setLong(1, id);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? Optional.of(documentRow(rs)) : Optional.empty();
            }
        }
    }

    public synchronized Optional<DocumentRow> document(long collectionId, String source) throws SQLException {
        try (PreparedStatement p = db.prepareStatement("SELECT * FROM documents WHERE collection_id = ? AND source = ?")) {
            p.setLong(1, collectionId);
            p.setString(2, source);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? Optional.of(documentRow(rs)) : Optional.empty();
            }
        }
    }

    public synchronized List<DocumentRow> documents(long collectionId) throws SQLException {
        return queryDocuments("SELECT * FROM documents WHERE collection_id = ? ORDER BY source", collectionId);
    }

    public synchronized List<DocumentRow> documentsInState(String state) throws SQLException {
        List<DocumentRow> out = new ArrayList<>();
        try (PreparedStatement p = db.prepareStatement("SELECT * FROM documents WHERE state = ? ORDER BY id")) {
            p.setString(1, state);
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) out.add(documentRow(rs));
            }
        }
        return out;
    }

    private List<DocumentRow> queryDocuments(String sql, long arg) throws SQLException {
        List<DocumentRow> out = new ArrayList<>();
        try (PreparedStatement p = db.prepareStatement(sql)) {
            p.setLong(1, arg);
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) out.add(documentRow(rs));
            }
        }
        return out;
    }

    private static DocumentRow documentRow(ResultSet rs) throws SQLException {
        return new DocumentRow(rs.getLong("id"), rs.getLong("collection_id"), rs.getString("source"),
                rs.getString("title"), rs.getString("media_type"), rs.getLong("size"), rs.getLong("mtime"),
                rs.getString("sha256"), rs.getInt("version"), rs.getString("state"));
    }

    /**
     * Writes a document's new content (replacing chunks and pages of an earlier version) in state
     * {@code pending}, in one transaction. Returns the document id.
     */
    public long putPending(long collectionId, String source, String title, String mediaType, long size, long mtime,
                           String sha256, String metadataJson, List<int[]> pages, List<ChunkRow> chunks)
            throws SQLException {
        return transaction(c -> {
            long now = System.currentTimeMillis();
            long id;
            int version;
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT id, version FROM documents WHERE collection_id = ? AND source = ?")) {
                p.setLong(1, collectionId);
                p.setString(2, source);
                try (ResultSet rs = p.executeQuery()) {
                    if (rs.next()) {
                        id = rs.getLong(1);
                        version = rs.getInt(2) + 1;
                    } else {
                        id = -1;
                        version = 1;
                    }
                }
            }
            if (id < 0) {
                try (Statement seq = c.createStatement()) {
                    seq.executeUpdate("INSERT INTO document_ids DEFAULT VALUES");
                    try (ResultSet keys = seq.executeQuery("SELECT last_insert_rowid()")) {
                        keys.next();
                        id = keys.getLong(1);
                    }
                    seq.executeUpdate("DELETE FROM document_ids"); // the sequence keeps its high-water mark
                }
                try (PreparedStatement p = c.prepareStatement("""
                        INSERT INTO documents(id, collection_id, source, title, media_type, size, mtime, sha256, version,
                                              state, metadata, created_at, updated_at)
                        VALUES (?,?,?,?,?,?,?,?,?,'pending',?,?,?)""")) {
                    p.setLong(1, id);
                    p.setLong(2, collectionId);
                    p.setString(3, source);
                    p.setString(4, title);
                    p.setString(5, mediaType);
                    p.setLong(6, size);
                    p.setLong(7, mtime);
                    p.setString(8, sha256);
                    p.setInt(9, version);
                    p.setString(10, metadataJson);
                    p.setLong(11, now);
                    p.setLong(12, now);
                    p.executeUpdate();
                }
            } else {
                try (PreparedStatement p = c.prepareStatement("""
                        UPDATE documents SET title=?, media_type=?, size=?, mtime=?, sha256=?, version=?,
                               state='pending', metadata=?, updated_at=? WHERE id=?""")) {
                    p.setString(1, title);
                    p.setString(2, mediaType);
                    p.setLong(3, size);
                    p.setLong(4, mtime);
                    p.setString(5, sha256);
                    p.setInt(6, version);
                    p.setString(7, metadataJson);
                    p.setLong(8, now);
                    p.setLong(9, id);
                    p.executeUpdate();
                }
                exec(c, "DELETE FROM chunks WHERE document_id = ?", id);
                exec(c, "DELETE FROM pages WHERE document_id = ?", id);
            }
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO document_versions(document_id, version, sha256, size, ingested_at) VALUES (?,?,?,?,?)")) {
                p.setLong(1, id);
                p.setInt(2, version);
                p.setString(3, sha256);
                p.setLong(4, size);
                p.setLong(5, now);
                p.executeUpdate();
            }
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO pages(document_id, number, char_start, char_end) VALUES (?,?,?,?)")) {
                for (int[] page : pages) {
                    p.setLong(1, id);
                    p.setInt(2, page[0]);
                    p.setInt(3, page[1]);
                    p.setInt(4, page[2]);
                    p.addBatch();
                }
                p.executeBatch();
            }
            try (PreparedStatement p = c.prepareStatement("""
                    INSERT INTO chunks(document_id, ordinal, page_start, page_end, char_start, char_end, heading, text,
                                       embedding) VALUES (?,?,?,?,?,?,?,?,?)""")) {
                for (ChunkRow ch : chunks) {
                    p.setLong(1, id);
                    p.setInt(2, ch.ordinal());
                    p.setInt(3, ch.pageStart());
                    p.setInt(4, ch.pageEnd());
                    p.setInt(5, ch.charStart());
                    p.setInt(6, ch.charEnd());
                    p.setString(7, ch.heading());
                    p.setString(8, ch.text());
                    p.setBytes(9, ch.embedding() == null ? null : toBytes(ch.embedding()));
                    p.addBatch();
                }
                p.executeBatch();
            }
            return id;
        });
    }

    /** Only a rename: same content under a new source path; Lucene holds no path, so nothing else changes. */
    public synchronized void rename(long documentId, String newSource, long mtime) throws SQLException {
        try (PreparedStatement p = db.prepareStatement(
                "UPDATE documents SET source = ?, mtime = ?, updated_at = ? WHERE id = ?")) {
            p.setString(1, newSource);
            p.setLong(2, mtime);
            p.setLong(3, System.currentTimeMillis());
            p.setLong(4, documentId);
            p.executeUpdate();
        }
    }

    public synchronized void touch(long documentId, long mtime) throws SQLException {
        exec(db, "UPDATE documents SET mtime = ? WHERE id = ?", mtime, documentId);
    }

    public synchronized void markState(Collection<Long> documentIds, String state) throws SQLException {
        if (documentIds.isEmpty()) return;
        transaction(c -> {
            try (PreparedStatement p = c.prepareStatement("UPDATE documents SET state = ?, updated_at = ? WHERE id = ?")) {
                long now = System.currentTimeMillis();
                for (long id : documentIds) {
                    p.setString(1, state);
                    p.setLong(2, now);
                    p.setLong(3, id);
                    p.addBatch();
                }
                p.executeBatch();
            }
            return null;
        });
    }

    /** Final removal once Lucene has committed the deletion. */
    public synchronized void purge(Collection<Long> documentIds) throws SQLException {
        if (documentIds.isEmpty()) return;
        transaction(c -> {
            for (long id : documentIds) {
                exec(c, "DELETE FROM chunks WHERE document_id = ?", id);
                exec(c, "DELETE FROM pages WHERE document_id = ?", id);
                exec(c, "DELETE FROM document_versions WHERE document_id = ?", id);
                exec(c, "DELETE FROM documents WHERE id = ?", id);
            }
            return null;
        });
    }

    public synchronized List<ChunkRow> chunksOf(long documentId) throws SQLException {
        List<ChunkRow> out = new ArrayList<>();
        try (PreparedStatement p = db.prepareStatement("SELECT * FROM chunks WHERE document_id = ? ORDER BY ordinal")) {
            p.setLong(1, documentId);
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) out.add(chunkRow(rs));
            }
        }
        return out;
    }

    public synchronized Map<Long, ChunkRow> chunks(Collection<Long> ids) throws SQLException {
        Map<Long, ChunkRow> out = new HashMap<>();
        if (ids.isEmpty()) return out;
        StringBuilder sql = new StringBuilder("SELECT * FROM chunks WHERE id IN (");
        for (int i = 0; i < ids.size(); i++) sql.append(i == 0 ? "?" : ",?");
        sql.append(')');
        try (PreparedStatement p = db.prepareStatement(sql.toString())) {
            int i = 1;
            for (long id : ids) p.setLong(i++, id);
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) {
                    ChunkRow c = chunkRow(rs);
                    out.put(c.id(), c);
                }
            }
        }
        return out;
    }

    private static ChunkRow chunkRow(ResultSet rs) throws SQLException {
        byte[] blob = rs.getBytes("embedding");
        return new ChunkRow(rs.getLong("id"), rs.getLong("document_id"), rs.getInt("ordinal"), rs.getInt("page_start"),
                rs.getInt("page_end"), rs.getInt("char_start"), rs.getInt("char_end"), rs.getString("heading"),
                rs.getString("text"), blob == null ? null : toFloats(blob));
    }

    public synchronized long count(String table) throws SQLException {
        if (!table.matches("[a-z_]+")) throw new IllegalArgumentException(table);
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM " + table)) {
            return rs.getLong(1);
        }
    }

    // ---- jobs and errors

    public synchronized long startJob(long collectionId, String kind, String root) throws SQLException {
        long now = System.currentTimeMillis();
        try (PreparedStatement p = db.prepareStatement(
                "INSERT INTO ingestion_jobs(collection_id, kind, root, state, started_at, updated_at) VALUES (?,?,?,'running',?,?)",
                Statement.RETURN_GENERATED_KEYS)) {
            p.setLong(1, collectionId);
            p.setString(2, kind);
            p.setString(3, root);
            p.setLong(4, now);
            p.setLong(5, now);
            p.executeUpdate();
            try (ResultSet keys = p.getGeneratedKeys()) {
                keys.next();
                return keys.getLong(1);
            }
        }
    }

    public synchronized void updateJob(long id, String state, long filesTotal, long filesDone, long bytesTotal,
                                       long bytesDone, long errors) throws SQLException {
        long now = System.currentTimeMillis();
        boolean finished = !state.equals("running");
        try (PreparedStatement p = db.prepareStatement("""
                UPDATE ingestion_jobs SET state=?, files_total=?, files_done=?, bytes_total=?, bytes_done=?, errors=?,
                       updated_at=?, finished_at=? WHERE id=?""")) {
            p.setString(1, state);
            p.setLong(2, filesTotal);
            p.setLong(3, filesDone);
            p.setLong(4, bytesTotal);
            p.setLong(5, bytesDone);
            p.setLong(6, errors);
            p.setLong(7, now);
            if (finished) p.setLong(8, now); else p.setNull(8, java.sql.Types.INTEGER);
            p.setLong(9, id);
            p.executeUpdate();
        }
    }

    public synchronized Optional<JobRow> job(long id) throws SQLException {
        List<JobRow> rows = jobs("SELECT * FROM ingestion_jobs WHERE id = " + id);
        return rows.isEmpty() ? Optional.empty() : Optional.of(rows.getFirst());
    }

    public synchronized List<JobRow> jobsInState(String state) throws SQLException {
        if (!state.matches("[a-z]+")) throw new IllegalArgumentException(state);
        return jobs("SELECT * FROM ingestion_jobs WHERE state = '" + state + "' ORDER BY id");
    }

    public synchronized List<JobRow> jobs(long collectionId) throws SQLException {
        return jobs("SELECT * FROM ingestion_jobs WHERE collection_id = " + collectionId + " ORDER BY id DESC");
    }

    private List<JobRow> jobs(String sql) throws SQLException {
        List<JobRow> out = new ArrayList<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            while (rs.next()) {
                long fin = rs.getLong("finished_at");
                out.add(new JobRow(rs.getLong("id"), rs.getLong("collection_id"), rs.getString("kind"),
                        rs.getString("root"), rs.getString("state"), rs.getLong("files_total"),
                        rs.getLong("files_done"), rs.getLong("bytes_total"), rs.getLong("bytes_done"),
                        rs.getLong("errors"), rs.getLong("started_at"), rs.getLong("updated_at"),
                        rs.wasNull() ? null : fin));
            }
        }
        return out;
    }

    public synchronized void recordError(Long jobId, long collectionId, String source, String reason) throws SQLException {
        try (PreparedStatement p = db.prepareStatement(
                "INSERT INTO ingestion_errors(job_id, collection_id, source, reason, at) VALUES (?,?,?,?,?)")) {
            if (jobId == null) p.setNull(1, java.sql.Types.INTEGER); else p.setLong(1, jobId);
            p.setLong(2, collectionId);
            p.setString(3, source);
            p.setString(4, reason);
            p.setLong(5, System.currentTimeMillis());
            p.executeUpdate();
        }
    }

    public synchronized List<ErrorRow> errors(long collectionId) throws SQLException {
        List<ErrorRow> out = new ArrayList<>();
        try (PreparedStatement p = db.prepareStatement(
                "SELECT * FROM ingestion_errors WHERE collection_id = ? ORDER BY id")) {
            p.setLong(1, collectionId);
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) {
                    long job = rs.getLong("job_id");
                    out.add(new ErrorRow(rs.getLong("id"), rs.wasNull() ? null : job, rs.getString("source"),
                            rs.getString("reason"), rs.getLong("at")));
                }
            }
        }
        return out;
    }

    // ---- helpers

    private static void exec(Connection c, String sql, Object... args) throws SQLException {
        try (PreparedStatement p = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
            p.executeUpdate();
        }
    }

    static byte[] toBytes(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }

    static float[] toFloats(byte[] bytes) {
        float[] v = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
        return v;
    }

    @Override
    public synchronized void close() throws SQLException {
        db.close();
    }
}
