package dev.enclave.rag.store;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/**
 * How the appliance opens its SQLite files (catalog, users, audit): WAL journal, {@code synchronous=FULL} so a
 * committed state survives power loss and not only kill -9, foreign keys on, a busy timeout. The driver is
 * instantiated directly rather than found through DriverManager, which cannot see it across Quarkus' class
 * loaders.
 */
public final class SqliteFiles {

    private SqliteFiles() {
    }

    public static Connection open(Path file) throws SQLException {
        dev.enclave.rag.embed.NativeLibraries.prepareSqlite(dev.enclave.rag.embed.NativeLibraries.defaultDirectory());
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            // owner only: SQLite gives its WAL and shared-memory files the database file's permissions
            if (!Files.exists(file)) {
                try {
                    Files.createFile(file, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                            java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
                } catch (UnsupportedOperationException | java.nio.file.FileAlreadyExistsException ignored) {
                    // not a POSIX file system, or made meanwhile: SQLite creates or opens it as usual
                }
            }
        } catch (java.io.IOException e) {
            throw new SQLException("cannot create " + file.getParent(), e);
        }
        Connection db = new org.sqlite.JDBC().connect("jdbc:sqlite:" + file.toAbsolutePath(), new Properties());
        try (Statement s = db.createStatement()) {
            s.execute("PRAGMA journal_mode=WAL");
            s.execute("PRAGMA synchronous=FULL");
            s.execute("PRAGMA foreign_keys=ON");
            s.execute("PRAGMA busy_timeout=10000");
        }
        return db;
    }

    /** Read-only, for verifying a copy (e.g. an audit log handed to an auditor). */
    public static Connection openReadOnly(Path file) throws SQLException {
        dev.enclave.rag.embed.NativeLibraries.prepareSqlite(dev.enclave.rag.embed.NativeLibraries.defaultDirectory());
        return new org.sqlite.JDBC().connect("jdbc:sqlite:file:" + file.toAbsolutePath() + "?mode=ro", new Properties());
    }
}
