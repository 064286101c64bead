package dev.enclave.runtime.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.backend.KvType;
import dev.enclave.runtime.eval.KvCodeCalibration;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The engine over a compressed, rotated, asymmetric KV cache (q8r/q4r, TinyStories-656K): forks of one prompt share its
 * encoded blocks and copy the partial one on write, a repeated prompt starts from the cached encoded prefix, and every
 * answer equals the one a lone sequence with the same cache type gives.
 */
class CompressedKvSchedulingTest {

    @Test
    void forksAndPrefixReuseOverEncodedBlocks() throws Exception {
        forksAndPrefixReuse(RuntimeOptions.defaults().withKvType(KvType.parse("q8r/q4r")), true);
    }

    /**
     * A transform-coded cache (calibrated on the model's own writing), and the same with a recent window: forks read
     * their parent's window too, so their answers are the lone sequence's; a reused prefix has no window of its own
     * (the sequence that wrote it is gone), so with a window only the forks are compared.
     */
    @Test
    void forksAndPrefixReuseOverTransformCodedBlocks() throws Exception {
        KvPlan plan, coarse;
        try (TransformerModel m = TransformerModel.load(SharedData.model("TinyStories-656K-F32.gguf"))) {
            plan = KvCodeCalibration.selfCalibrated(m, 4, 64, 2.5, 3.5, false, 1, "test", null).plan();
            // rows this coarse change the answer unless the fork reads its parent's window as the lone sequence does
            coarse = KvCodeCalibration.selfCalibrated(m, 4, 64, 0.5, 0.5, false, 1, "coarse", null).plan();
        }
        forksAndPrefixReuse(RuntimeOptions.defaults().withKvPlan(plan), true);
        forksAndPrefixReuse(RuntimeOptions.defaults().withKvPlan(coarse.withWindow(16)), false);
    }

    private static void forksAndPrefixReuse(RuntimeOptions options, boolean reuseIsExact) throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("TinyStories-656K-F32.gguf"), options);
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, new ContinuousBatchScheduler.Settings(8, 64, 64, 16, 16L << 20, 0))) {
            int[] prompt = m.tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved to play outside "
                    + "in the park with her big red ball and her friend Tom.", true, false);
            assertTrue(prompt.length % 16 != 0, "the prompt ends inside a block");
            // four choices of one prompt: the engine reads the prompt once and forks
            List<GenerationRequest> reqs = new ArrayList<>();
            List<TokenListener> listeners = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                reqs.add(new GenerationRequest(prompt, 24, Sampler.of(0f, 1f, 0), List.of(), true));
                listeners.add(TokenListener.NONE);
            }
            long cachedBefore = s.metrics().cachedPromptTokens();
            List<ContinuousBatchScheduler.Handle> hs = s.submitAll(reqs, listeners);
            GenerationResult alone = new Generator(m).generate(reqs.getFirst(), TokenListener.NONE);
            for (ContinuousBatchScheduler.Handle h : hs) assertArrayEquals(alone.tokens(), h.result().get(60, TimeUnit.SECONDS).tokens());
            assertEquals(3L * prompt.length, s.metrics().cachedPromptTokens() - cachedBefore, "the forks shared the prompt");
            // the same prompt again: its full blocks come from the cache, encoded as they were written
            long before = s.metrics().cachedPromptTokens();
            GenerationResult again = s.generate(new GenerationRequest(prompt, 24, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
            assertTrue(s.metrics().cachedPromptTokens() - before >= prompt.length / 16 * 16, "prefix reused");
            if (reuseIsExact) assertArrayEquals(alone.tokens(), again.tokens());
            assertEquals(0, s.metrics().kvBlocksUsed() - s.metrics().kvBlocksCached(), "blocks leaked");
        }
    }
}
