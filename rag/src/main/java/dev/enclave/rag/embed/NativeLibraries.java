package dev.enclave.rag.embed;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Locale;

/**
 * Unpacks the native parts of ONNX Runtime and the Hugging Face tokenizers into one configured, writable
 * directory — never a home directory or a random temp directory — and points both libraries at it. On the
 * appliance this is {@code /var/lib/enclave/native}; a read-only system keeps working because nothing else
 * is written.
 */
public final class NativeLibraries {

    private static volatile Path prepared;

    private NativeLibraries() {
    }

    /** Idempotent: the first call wins; later calls with another directory keep the first. */
    public static synchronized Path prepare(Path dir) {
        if (prepared != null) return prepared;
        try {
            Path ort = dir.resolve("onnxruntime");
            Files.createDirectories(ort);
            String platform = ortPlatform();
            for (String lib : new String[] {"libonnxruntime.so", "libonnxruntime4j_jni.so"}) {
                copyIfChanged("/ai/onnxruntime/native/" + platform + "/" + lib, ort.resolve(lib));
            }
            System.setProperty("onnxruntime.native.path", ort.toString());
            // DJL copies libtokenizers.so into its engine cache directory: make that ours, and never download.
            Path djl = dir.resolve("djl");
            Files.createDirectories(djl);
            System.setProperty("DJL_CACHE_DIR", djl.toString());
            System.setProperty("ENGINE_CACHE_DIR", djl.toString());
            System.setProperty("ai.djl.offline", "true");
            prepared = dir;
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack native libraries into " + dir, e);
        }
    }

    private static volatile boolean sqlitePrepared;

    /**
     * Unpacks SQLite's JDBC library into {@code dir/sqlite} (when changed) and points the driver at it. Left to itself
     * the driver unpacks a copy under a new name into java.io.tmpdir at every start, compares it with the jar's byte
     * by byte through two streams, and lists the whole temporary directory to delete earlier copies, on the thread
     * that starts the server. Best effort: where {@code dir} cannot be written, the driver does as before.
     */
    public static synchronized void prepareSqlite(Path dir) {
        if (sqlitePrepared || System.getProperty("org.sqlite.lib.path") != null) return;
        sqlitePrepared = true;
        try {
            Path sqlite = dir.resolve("sqlite");
            Files.createDirectories(sqlite);
            String name = org.sqlite.util.LibraryLoaderUtil.getNativeLibName();
            String folder = org.sqlite.util.LibraryLoaderUtil.getNativeLibResourcePath(); // "/org/sqlite/native/Linux/x86_64"
            copyIfChanged((folder.startsWith("/") ? "" : "/") + folder + "/" + name, sqlite.resolve(name));
            System.setProperty("org.sqlite.tmpdir", sqlite.toString());
            System.setProperty("org.sqlite.lib.name", name);
            System.setProperty("org.sqlite.lib.path", sqlite.toString());
        } catch (IOException | RuntimeException e) {
            // the driver's own unpacking still works
        }
    }

    /** Default when nothing is configured: under the data directory the caller gives, else java.io.tmpdir. */
    public static Path defaultDirectory() {
        String configured = System.getProperty("enclave.native-dir", System.getenv("ENCLAVE_NATIVE_DIR"));
        if (configured != null && !configured.isBlank()) return Path.of(configured);
        return Path.of(System.getProperty("java.io.tmpdir"), "enclave-native-" + System.getProperty("user.name", "user"));
    }

    static void copyIfChanged(String resource, Path target) throws IOException {
        try (InputStream in = NativeLibraries.class.getResourceAsStream(resource)) {
            if (in == null) throw new IOException("native library not on the class path: " + resource);
            byte[] bytes = in.readAllBytes();
            // compare contents, not sizes: an upgrade can ship a library of the same size (ONNX Runtime's JNI
            // part is 80,160 bytes in both 1.20.0 and 1.23.2), and a stale one fails to link against the new
            if (Files.exists(target) && Files.size(target) == bytes.length
                    && Arrays.equals(Files.readAllBytes(target), bytes)) return;
            // a temp name of its own: two processes unpacking at once must not write into each other's file
            Path tmp = Files.createTempFile(target.getParent(), target.getFileName().toString(), ".tmp");
            try {
                Files.write(tmp, bytes);
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private static String ortPlatform() {
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        if (!os.contains("linux")) throw new IllegalStateException("embeddings need Linux (found " + os + ")");
        return switch (arch) {
            case "amd64", "x86_64" -> "linux-x64";
            case "aarch64", "arm64" -> "linux-aarch64";
            default -> throw new IllegalStateException("no ONNX Runtime build for " + arch);
        };
    }
}
