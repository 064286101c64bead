package dev.enclave.rag.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.rag.TestEmbedder;
import dev.enclave.rag.retrieve.HybridRetriever;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real full disk (a 4 MiB tmpfs, mounted as root; skipped where mounting is not allowed): ingestion fails with
 * an error saying so and loses nothing already indexed, and once space is back the same open index takes new
 * documents again, consistent, without a restart. (Lucene closes its writer after such a failure; before, the
 * index answered "IndexWriter is closed" until the process restarted.)
 */
class FullDiskTest {

    @TempDir
    Path tmp;
    Path mount;

    private static boolean run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor() == 0;
    }

    @AfterEach
    void unmount() throws Exception {
        if (mount != null) run("umount", "-l", mount.toString());
    }

    /** Writes until the file system refuses; returns the filler to delete later. */
    private static Path fill(Path dir) throws IOException {
        Path filler = dir.resolve("filler");
        byte[] block = new byte[16 << 10];
        try (OutputStream out = Files.newOutputStream(filler)) {
            for (;;) out.write(block);
        } catch (IOException full) {
            return filler;
        }
    }

    /** The whole index on the small disk: the catalog (SQLite) is what fails first. */
    @Test
    void aFullDiskFailsTheWriteAndTheIndexRecoversWhenSpaceReturns() throws Exception {
        mount = tmp.resolve("disk");
        Files.createDirectories(mount);
        Assumptions.assumeTrue(run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount.toString()),
                "mounting a small tmpfs needs root and a mount namespace that allows it");
        scenario(mount.resolve("index"), mount, "No space left on device");
    }

    /** Only the full-text index on the small disk: Lucene's writer fails mid-flush and closes itself. */
    @Test
    void aFullLuceneDiskClosesTheWriterAndItIsReopened() throws Exception {
        Path dir = tmp.resolve("index");
        mount = dir.resolve("lucene");
        Files.createDirectories(mount);
        Assumptions.assumeTrue(run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount.toString()),
                "mounting a small tmpfs needs root and a mount namespace that allows it");
        scenario(dir, mount, "No space left on device");
    }

    private void scenario(Path dir, Path disk, String expected) throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("c", "", List.of(), List.of());
            assertTrue(index.ingest("c", text("kept.txt", "Gloves are changed between patients.")).ok());
            Path filler = fill(disk);
            Exception failure = null;
            for (int i = 0; i < 20 && failure == null; i++) {
                try {
                    var o = index.ingest("c", text("big" + i + ".txt", ("Sterile field number " + i + ". ").repeat(4000)));
                    if (!o.ok()) failure = new IOException(o.error());
                } catch (Exception e) {
                    failure = e;
                }
            }
            assertTrue(failure != null, "the full disk was noticed");
            assertTrue(String.valueOf(failure.getMessage()).contains(expected), "says so: " + failure);
            // space comes back: the same index writes again and holds everything it promised
            Files.delete(filler);
            var after = index.ingest("c", text("after.txt", "Masks are worn in the isolation rooms."));
            assertTrue(after.ok(), after.error());
            assertTrue(index.writable());
            assertEquals(List.of(), index.verify());
            var hits = new HybridRetriever(index).search(Principal.SYSTEM,
                    new HybridRetriever.Query("gloves patients", List.of("c"), 3, HybridRetriever.Mode.BM25));
            assertEquals("kept.txt", hits.getFirst().source());
            assertFalse(new HybridRetriever(index).search(Principal.SYSTEM,
                    new HybridRetriever.Query("isolation masks", List.of("c"), 3, HybridRetriever.Mode.BM25)).isEmpty());
        }
    }

    static DocumentIndex.Source text(String name, String body) {
        return new DocumentIndex.Source(name, body.getBytes(StandardCharsets.UTF_8), 1, "{}");
    }
}
