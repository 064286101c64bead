package dev.enclave.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.gguf.GGUFFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The merge table kept between starts: a second load reads it and tokenizes exactly as a fresh one; a damaged file,
 * another model file or a changed one is ignored.
 */
class MergeTableCacheTest {

    private static final String TEXT = "Hello wörld! 🦙 tabs\tand\nnewlines, 日本語 3.14159 don't   spaces";

    @Test
    void aStoredTableTokenizesAsAFreshOne(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("vocab.gguf");
        Files.copy(SharedData.vocab("ggml-vocab-llama-bpe.gguf"), model);
        Path dir = tmp.resolve("cache");
        int[] fresh;
        int tokens;
        int merges;
        try (GGUFFile g = GGUFFile.open(model)) {
            tokens = g.getArray("tokenizer.ggml.tokens").length();
            merges = g.getArray("tokenizer.ggml.merges").length();
            fresh = Tokenizer.fromGGUF(g).encode(TEXT, true, false);
            MergeTableCache cache = MergeTableCache.of(dir, model);
            assertNull(cache.load(tokens, merges));
            Tokenizer.fromGGUF(g, cache); // resolves the merges and stores them in the background
            waitFor(cache.file());
        }
        MergeTableCache cache = MergeTableCache.of(dir, model);
        MergeRanks stored = cache.load(tokens, merges);
        assertNotNull(stored);
        assertTrue(stored.size() > 200_000, "Llama 3's merges");
        assertNull(cache.load(tokens + 1, merges), "another vocabulary's count");
        try (GGUFFile g = GGUFFile.open(model)) {
            assertArrayEquals(fresh, Tokenizer.fromGGUF(g, cache).encode(TEXT, true, false));
        }

        // one byte of the ranks damaged: the checksum refuses the file, the tokenizer resolves the merges again
        byte[] bytes = Files.readAllBytes(cache.file());
        bytes[bytes.length / 2] ^= 0x10;
        Files.write(cache.file(), bytes);
        assertNull(cache.load(tokens, merges));
        try (GGUFFile g = GGUFFile.open(model)) {
            assertArrayEquals(fresh, Tokenizer.fromGGUF(g, MergeTableCache.of(dir, model)).encode(TEXT, true, false));
        }

        // the model file changed since the table was stored: ignored
        waitFor(cache.file());
        for (int i = 0; i < 100 && MergeTableCache.of(dir, model).load(tokens, merges) == null; i++) Thread.sleep(50);
        assertNotNull(MergeTableCache.of(dir, model).load(tokens, merges), "rewritten after the damage");
        Files.setLastModifiedTime(model, FileTime.fromMillis(Files.getLastModifiedTime(model).toMillis() - 60_000));
        assertNull(MergeTableCache.of(dir, model).load(tokens, merges));
        assertNull(MergeTableCache.of(null, model));
    }

    /**
     * A damaged or hostile cache file never breaks a load: random byte changes, with the checksum recomputed so the
     * header's and the table's own checks are what must refuse them, and truncations; each load gives null or a table
     * whose lookups end (every probe sequence meets an empty slot).
     */
    @Test
    void mutatedCacheFilesAreRefusedOrHarmless(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("vocab.gguf");
        Files.copy(SharedData.vocab("ggml-vocab-llama-bpe.gguf"), model);
        int tokens, merges;
        MergeTableCache cache = MergeTableCache.of(tmp.resolve("cache"), model);
        try (GGUFFile g = GGUFFile.open(model)) {
            tokens = g.getArray("tokenizer.ggml.tokens").length();
            merges = g.getArray("tokenizer.ggml.merges").length();
            Tokenizer.fromGGUF(g, cache);
        }
        waitFor(cache.file());
        byte[] good = Files.readAllBytes(cache.file());
        java.util.SplittableRandom r = new java.util.SplittableRandom(11);
        int refused = 0;
        for (int i = 0; i < 150; i++) {
            byte[] bad;
            if (i % 5 == 0) {
                bad = java.util.Arrays.copyOf(good, r.nextInt(good.length));
            } else {
                bad = good.clone();
                // mostly the header and the table's first slots, where a change decides what is read
                for (int k = 0; k < 1 + r.nextInt(4); k++) bad[r.nextInt(r.nextBoolean() ? 128 : bad.length - 8)] = (byte) r.nextInt(256);
                java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
                crc.update(bad, 0, bad.length - 8);
                java.nio.ByteBuffer.wrap(bad).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(bad.length - 8, crc.getValue());
            }
            Files.write(cache.file(), bad);
            MergeRanks t = cache.load(tokens, merges);
            if (t == null) {
                refused++;
                continue;
            }
            for (int q = 0; q < 2000; q++) t.rank(r.nextInt(tokens), r.nextInt(tokens)); // ends: the table has empty slots
        }
        assertTrue(refused > 30, refused + " refused");
    }

    private static void waitFor(Path file) throws InterruptedException {
        for (int i = 0; i < 200 && !Files.isRegularFile(file); i++) Thread.sleep(50);
        assertTrue(Files.isRegularFile(file), "cache written: " + file);
    }
}
