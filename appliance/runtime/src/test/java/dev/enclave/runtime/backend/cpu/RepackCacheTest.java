package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.enclave.runtime.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Repacked tensors written to the cache by one load are mapped by the next, with bit-identical logits; a damaged or
 * truncated cache file is ignored (same logits again) and rewritten.
 */
class RepackCacheTest {

    @TempDir
    Path dir;

    private RuntimeOptions options;

    @Test
    void secondLoadMapsTheCacheAndDamageIsIgnored() throws Exception {
        assumeTrue(dev.enclave.runtime.tensor.RowGroupTensor.AVAILABLE, "the repacked route needs vectors of 8 shorts or more");
        options = RuntimeOptions.defaults().withRepackCacheDir(dir);
        Path model = SharedData.model("syn-llama3-bpe-Q4_K_M.gguf");

        float[] first = logits(model, true);
        Path cacheFile;
        try (var files = Files.list(dir)) {
            cacheFile = files.filter(p -> p.toString().endsWith(".repack")).findFirst().orElseThrow();
        }
        assertTrue(Files.size(cacheFile) > 100_000, "cache file " + Files.size(cacheFile) + " bytes");

        assertArrayEquals(first, logits(model, false), "logits from the mapped cache");

        byte[] bytes = Files.readAllBytes(cacheFile);
        bytes[40] ^= 0x5A; // inside the header: the CRC no longer matches
        Files.write(cacheFile, bytes);
        assertArrayEquals(first, logits(model, true), "logits with a damaged cache (ignored, rewritten)");
        assertArrayEquals(first, logits(model, false), "logits from the rewritten cache");

        Files.write(cacheFile, java.util.Arrays.copyOf(Files.readAllBytes(cacheFile), 10_000)); // truncated
        assertArrayEquals(first, logits(model, true), "logits with a truncated cache (ignored, rewritten)");
    }

    /**
     * The tied vocabulary matrix (Q6_K in this file) at 6 bits, then as int8: the cache holds the other kind, so the
     * second load repacks instead of mapping it, and the logits are bit-identical (the same exact integer sums of
     * the same values, in the same 8-column halves). The file then keeps both kinds: switching back and forth maps
     * and writes nothing.
     */
    @Test
    void vocabularyLayoutSwitchRepacksAndKeepsTheLogits() throws Exception {
        assumeTrue(dev.enclave.runtime.tensor.RowGroupTensor.AVAILABLE, "the repacked route needs vectors of 8 shorts or more");
        options = RuntimeOptions.defaults().withRepackCacheDir(dir);
        Path model = SharedData.model("syn-llama3-bpe-Q4_K_M.gguf");
        options = options.withVocabularyInt8(false);
        float[] sixBits = logits(model, true);
        options = options.withVocabularyInt8(true);
        assertArrayEquals(sixBits, logits(model, true), "logits with the vocabulary matrix as int8");
        assertArrayEquals(sixBits, logits(model, false), "logits from the cache holding the int8 form");
        options = options.withVocabularyInt8(false);
        assertArrayEquals(sixBits, logits(model, false), "6-bit form mapped again after an int8 load");
        options = options.withVocabularyInt8(true);
        assertArrayEquals(sixBits, logits(model, false), "int8 form mapped again after a 6-bit load");
    }

    /** Loads, reads the prompt, returns the last logits; checks whether this load had to write the cache. */
    private float[] logits(Path model, boolean expectWrite) throws Exception {
        CpuBackend cpu = CpuBackend.instance();
        try (TransformerModel m = TransformerModel.load(model, options, java.util.List.of(cpu))) {
            InferenceState s = m.newState(64);
            float[] out = m.ingest(s, m.tokenizer().encode("The quick brown fox jumps over the lazy dog.", true, false)).clone();
            Thread writer = ((CpuWeights) m.preparer(cpu)).cacheWriter();
            if (expectWrite) {
                assertNotNull(writer, "this load repacked and writes the cache");
                writer.join();
            } else {
                assertNull(writer, "every repacked tensor came from the cache");
            }
            return out;
        }
    }
}
