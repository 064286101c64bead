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

    private static void waitFor(Path file) throws InterruptedException {
        for (int i = 0; i < 200 && !Files.isRegularFile(file); i++) Thread.sleep(50);
        assertTrue(Files.isRegularFile(file), "cache written: " + file);
    }
}
