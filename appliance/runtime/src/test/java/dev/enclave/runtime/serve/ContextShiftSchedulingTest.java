package dev.enclave.runtime.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.generate.ContextShift;
import dev.enclave.runtime.generate.FinishReason;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.Speculation;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The engine's context shift (tinystories-hd64: 512 positions): a sequence that fills its context goes on as the
 * generator's does, its blocks go back to the pool, and its shortened cache is not offered to the next turn.
 */
class ContextShiftSchedulingTest {

    @Test
    void aSequenceThatFillsItsContextGoesOn() throws Exception {
        var settings = new ContinuousBatchScheduler.Settings(4, 16, 64, 16, 64L << 20, 0).withContextShift(ContextShift.SINKS);
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, settings)) {
            int[] prompt = m.tokenizer().encode("Once upon a time, there was a little girl named Lily. She", true, false);
            GenerationRequest req = new GenerationRequest(prompt, 700, Sampler.of(0f, 1f, 0), List.of(), true);
            GenerationResult served = s.generate(req, TokenListener.NONE);
            assertEquals(700, served.tokens().length);
            assertEquals(FinishReason.LENGTH, served.finishReason());
            assertEquals(1, s.contextShifts(), "512 positions, the older 240 dropped once");
            GenerationResult alone = new Generator(m, Speculation.OFF, ContextShift.SINKS).generate(m.newState(512), req, TokenListener.NONE);
            assertArrayEquals(alone.tokens(), served.tokens());
            assertEquals(0, s.metrics().kvBlocksUsed() - s.metrics().kvBlocksCached(), "blocks leaked");
            // the shifted conversation is not cached: a follow-up that extends it reads its prompt again
            int[] follow = java.util.Arrays.copyOf(prompt, prompt.length + 100);
            System.arraycopy(served.tokens(), 0, follow, prompt.length, 100);
            long before = s.metrics().cachedPromptTokens();
            s.generate(new GenerationRequest(follow, 4, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
            assertTrue(s.metrics().cachedPromptTokens() - before < prompt.length + 100, "nothing of the shifted answer was reused");
        }
        // without the setting the sequence ends with its context
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, new ContinuousBatchScheduler.Settings(4, 16, 64, 16, 64L << 20, 0))) {
            int[] prompt = m.tokenizer().encode("Once upon a time", true, false);
            GenerationResult r = s.generate(new GenerationRequest(prompt, 700, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
            assertEquals(512 - prompt.length + 1, r.tokens().length);
            assertEquals(0, s.contextShifts());
        }
    }
}
