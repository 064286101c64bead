package dev.enclave.runtime.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.model.TransformerModel;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/**
 * Perplexity chunked as llama.cpp's: on tinystories-hd64-F32 and TinyStories validation stories 801-900 with a
 * 256-token context, {@code llama-perplexity -c 256} (the anchor build, F16 cache) prints 75.3649 +/- 2.19132 over 71
 * chunks; the F32 weights and F32 cache here must give the same within 0.1% (the issue asks 1%), and the same count
 * of scored tokens (71 x 127).
 */
class PerplexityTest {

    @Test
    void matchesLlamaCppOnTheSameFileTextAndContext() throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        RuntimeOptions o = RuntimeOptions.defaults().withWarmup(false);
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"), o)) {
            Perplexity.Result r = Perplexity.run(m, text, 256, 512, 0, null);
            assertEquals(71, r.chunks());
            assertEquals(71 * 127, r.tokens(), "positions ctx/2 .. ctx-2 of each chunk");
            assertEquals(75.3649, r.ppl(), 75.3649 * 1e-3, "llama-perplexity's figure");
            assertEquals(2.19132, r.pplStderr(), 0.01, "its +/- (PPL x standard error of the mean NLL)");

            // a smaller step within each chunk changes nothing but rounding
            Perplexity.Result stepped = Perplexity.run(m, text, 256, 100, 3, null);
            Perplexity.Result whole = Perplexity.run(m, text, 256, 512, 3, null);
            assertEquals(whole.ppl(), stepped.ppl(), whole.ppl() * 1e-4);
            assertTrue(whole.ppl() != r.ppl(), "--chunks limits the chunks scored");

            assertThrows(IllegalArgumentException.class, () -> Perplexity.run(m, "too short", 256, 512, 0, null));
            assertThrows(IllegalArgumentException.class, () -> Perplexity.run(m, text, 1 << 20, 512, 0, null));
        }
    }

    /**
     * Streamed through a small context: every token after the first ctx is scored, the context shifts exactly as
     * often as its freed positions require, and both eviction policies run the same shifts on the same text.
     */
    @Test
    void streamedThroughAShiftingContext() throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        RuntimeOptions o = RuntimeOptions.defaults().withWarmup(false);
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"), o)) {
            int ctx = 64, n = 700;
            dev.enclave.runtime.backend.KvPlan plan = m.options().kvType();
            dev.enclave.runtime.generate.ContextShift window = new dev.enclave.runtime.generate.ContextShift(4);
            Perplexity.Streamed w = Perplexity.stream(m, plan, text, ctx, n, window, null);
            assertEquals(n - ctx, w.tokens());
            int freed = window.dropped(ctx, 16); // 16-position blocks: 16 kept, half of the other 48 rounded down to blocks
            assertEquals(16, freed);
            assertEquals((n - 1 - ctx + freed - 1) / freed, w.shifts());
            assertTrue(w.ppl() > 1 && w.ppl() < 1000, "ppl " + w.ppl());
            Perplexity.Streamed h = Perplexity.stream(m, plan, text, ctx, n, new dev.enclave.runtime.generate.ContextShift(4, true), null);
            assertEquals(w.shifts(), h.shifts());
            assertTrue(h.ppl() != w.ppl(), "the heavy-hitter policy keeps other blocks");
            assertThrows(IllegalArgumentException.class, () -> Perplexity.stream(m, plan, text, ctx, ctx, window, null));
        }
    }
}
