package dev.enclave.rag.store;

import dev.enclave.rag.TestEmbedder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Kills an ingesting process with SIGKILL at random moments, reopens the index and checks that SQLite and
 * Lucene agree exactly: no document lost in between, none indexed twice. 20 rounds by default;
 * {@code -Dcrash.rounds=N} for a longer run.
 */
class CrashConsistencyTest {

    @TempDir
    Path dir;

    @Test
    void killNineAtRandomMomentsLeavesTheStoresConsistent() throws Exception {
        int rounds = Integer.getInteger("crash.rounds", 20);
        Random r = new Random(7);
        Path index = dir.resolve("index");
        int sawDocuments = 0;
        for (int round = 0; round < rounds; round++) {
            Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--enable-native-access=ALL-UNNAMED", "-Xmx512m",
                    "-cp", System.getProperty("java.class.path"), CrashWorker.class.getName(),
                    index.toString(), Long.toString(r.nextLong()), Path.of("target/native").toAbsolutePath().toString())
                    .redirectErrorStream(true).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()));
            String line;
            StringBuilder log = new StringBuilder();
            while ((line = out.readLine()) != null && !line.equals("READY")) log.append(line).append('\n');
            assertNotNull(line, "worker died before READY:\n" + log);
            Thread.sleep(50 + r.nextInt(1500));
            p.destroyForcibly(); // SIGKILL
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            try (DocumentIndex reopened = DocumentIndex.open(index, TestEmbedder.get())) {
                List<String> problems = reopened.verify();
                assertEquals(List.of(), problems, "round " + round);
                sawDocuments = Math.max(sawDocuments, (int) reopened.catalog().count("documents"));
            }
        }
        assertTrue(sawDocuments > 0, "the worker must have ingested something before being killed");
    }
}
