package dev.enclave.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;

/**
 * The packaged application's classes can all go into the JDK AOT cache the launcher makes: no library class file is
 * older than Java 6 (the build rewrites picocli's, src/build/UpgradeOldClassFiles.java), and the training run of the
 * packaged jar that {@code ./enclave} and the installer make one by ({@code serve --startup-training}) answers its
 * requests, neither leaves picocli out of the cache nor fails to load it after.
 */
class AotCacheIT {

    static final Path APP = Path.of("target/quarkus-app");

    @Test
    void noLibraryClassIsTooOldForTheCache() throws IOException {
        List<String> old = new ArrayList<>();
        int picocli = 0;
        try (DirectoryStream<Path> jars = Files.newDirectoryStream(APP.resolve("lib/main"), "*.jar")) {
            for (Path jar : jars) {
                try (ZipFile zip = new ZipFile(jar.toFile())) {
                    for (ZipEntry e : Collections.list(zip.entries())) {
                        if (!e.getName().endsWith(".class") || e.getName().startsWith("META-INF/")) continue;
                        try (InputStream in = zip.getInputStream(e)) {
                            byte[] h = in.readNBytes(8);
                            int major = (h[6] & 0xFF) << 8 | h[7] & 0xFF;
                            if (major < 50) old.add(jar.getFileName() + "!" + e.getName() + " (" + major + ")");
                            if (e.getName().startsWith("picocli/")) picocli++;
                        }
                    }
                }
            }
        }
        assertTrue(picocli > 100, "picocli is packaged: " + picocli + " classes");
        assertEquals(List.of(), old.subList(0, Math.min(5, old.size())), old.size() + " class files below major version 50");
    }

    @Test
    void theTrainingRunServesCachesPicocliAndTheCachedRunParsesItsCommandLine() throws Exception {
        Path dir = Files.createTempDirectory("aot");
        Path cache = dir.resolve("app.aot");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String jar = APP.resolve("quarkus-run.jar").toAbsolutePath().toString();
        List<String> base = List.of(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED");
        List<String> train = new ArrayList<>(base);
        // the launcher's training run: the bundled model served on a free loopback port, one request of each kind
        train.addAll(List.of("-Xlog:aot=warning", "-XX:AOTCacheOutput=" + cache, "-jar", jar, "serve", "--startup-training"));
        String log = run(train, dir);
        assertTrue(Files.isRegularFile(cache), "the cache was written:\n" + log);
        assertTrue(log.contains("enclave: serving stories260K on http://127.0.0.1:"), log);
        assertFalse(log.contains("training run:"), log);
        assertFalse(log.contains("Skipping picocli"), "picocli left out of the cache:\n" + log);
        assertFalse(Files.exists(dir.resolve("data")), "the training run keeps its data elsewhere (and deletes it)");
        List<String> cached = new ArrayList<>(base);
        cached.addAll(List.of("-XX:AOTCache=" + cache, "-XX:AOTMode=on", "-jar", jar, "tokenize", "--text", "Once upon a time", "--json"));
        String out = run(cached, dir);
        assertTrue(out.contains("\"tokens\""), out);
    }

    static String run(List<String> command, Path dir) throws Exception {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "finished: " + command);
        String text = new String(out, java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), text);
        return text;
    }
}
