package dev.enclave.rag.embed;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class NativeLibrariesTest {

    static final String JNI = "/ai/onnxruntime/native/"
            + (System.getProperty("os.arch").contains("aarch64") ? "linux-aarch64" : "linux-x64") + "/libonnxruntime4j_jni.so";

    static byte[] resource() throws Exception {
        try (InputStream in = NativeLibraries.class.getResourceAsStream(JNI)) {
            assertNotNull(in, JNI);
            return in.readAllBytes();
        }
    }

    @Test
    void staleLibraryOfTheSameSizeIsReplaced(@TempDir Path dir) throws Exception {
        byte[] want = resource();
        // what an older release left behind: same length, other bytes (ONNX Runtime 1.20's JNI part is as long)
        byte[] stale = want.clone();
        for (int i = 0; i < stale.length; i += 4096) stale[i] ^= 0x5A;
        Path target = dir.resolve("libonnxruntime4j_jni.so");
        Files.write(target, stale);
        NativeLibraries.copyIfChanged(JNI, target);
        assertArrayEquals(want, Files.readAllBytes(target));
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temp file left behind");
        }
    }

    @Test
    void upToDateLibraryIsLeftAlone(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("libonnxruntime4j_jni.so");
        NativeLibraries.copyIfChanged(JNI, target);
        var written = Files.getLastModifiedTime(target);
        Thread.sleep(20);
        NativeLibraries.copyIfChanged(JNI, target);
        assertEquals(written, Files.getLastModifiedTime(target));
        assertTrue(Arrays.equals(resource(), Files.readAllBytes(target)));
    }

    @Test
    void sqliteLoadsItsLibraryFromTheNativeDirectory(@TempDir Path dir) throws Exception {
        // the first connection of this JVM prepares it; a later one finds it prepared
        try (var db = dev.enclave.rag.store.SqliteFiles.open(dir.resolve("x.sqlite"));
             var st = db.createStatement(); var rs = st.executeQuery("SELECT sqlite_version()")) {
            assertTrue(rs.next() && !rs.getString(1).isEmpty());
        }
        Path lib = NativeLibraries.defaultDirectory().resolve("sqlite").resolve(org.sqlite.util.LibraryLoaderUtil.getNativeLibName());
        assertEquals(lib.getParent().toString(), System.getProperty("org.sqlite.lib.path"));
        assertEquals(lib.getParent().toString(), System.getProperty("org.sqlite.tmpdir"), "the driver's clean-up lists this directory only");
        try (InputStream in = NativeLibraries.class.getResourceAsStream(
                org.sqlite.util.LibraryLoaderUtil.getNativeLibResourcePath() + "/" + lib.getFileName())) {
            assertNotNull(in);
            assertArrayEquals(in.readAllBytes(), Files.readAllBytes(lib), "the jar's library, unpacked once");
        }
    }
}
