package dev.enclave.runtime.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.GreedySampler;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Battery saver: generation is capped at the configured tokens per second, and the text is unchanged. */
class BatterySaverTest {

    @Test
    void tokensNeverComeFasterThanTheCap() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama2-spm-Q4_0.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m,
                     new ContinuousBatchScheduler.Settings(8, 64, 64, 16, 32L << 20, 0, 40))) {
            int[] prompt = m.tokenizer().encode("Once upon a time", true, false);
            GenerationRequest r = new GenerationRequest(prompt, 30, new GreedySampler(), List.of(), true);
            long t0 = System.nanoTime();
            GenerationResult capped = s.generate(r, TokenListener.NONE);
            double seconds = (System.nanoTime() - t0) / 1e9;
            // 30 tokens at 40 tokens/s: at least ~0.7 s whatever the machine (a lower bound cannot flake on a slow one)
            assertTrue(seconds >= 29 / 40.0 * 0.95, "took " + seconds + " s");
            GenerationResult free = new Generator(m).generate(new GenerationRequest(prompt, 30, new GreedySampler(), List.of(), true),
                    TokenListener.NONE);
            assertArrayEquals(free.tokens(), capped.tokens());
        }
    }
}
