package dev.enclave.runtime.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.Speculation;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The engine's speculative steps (TinyStories-656K, copy-heavy prompts): answers equal plain decoding, alone and
 * beside other sequences, greedy and sampled; guesses are kept and counted; the KV blocks of guesses that were not
 * kept neither leak nor reach the prefix cache.
 */
class SpeculativeSchedulingTest {

    static final ContinuousBatchScheduler.Settings SETTINGS =
            new ContinuousBatchScheduler.Settings(8, 64, 64, 16, 64L << 20, 0).withSpeculation(Speculation.NGRAM.withFixedCosts());

    @Test
    void speculativeStepsGiveThePlainAnswers() throws Exception {
        String story = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        try (TransformerModel m = TransformerModel.load(SharedData.model("TinyStories-656K-F32.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, SETTINGS)) {
            List<int[]> prompts = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                String part = story.substring(i * 700, i * 700 + 600);
                prompts.add(m.tokenizer().encode(part + "\n\n" + part.substring(0, 150), true, false));
            }
            // one at a time: every decode step of the sequence may speculate
            for (int i = 0; i < 2; i++) {
                GenerationResult alone = s.generate(greedy(prompts.get(i), 64), TokenListener.NONE);
                GenerationResult plain = new Generator(m).generate(greedy(prompts.get(i), 64), TokenListener.NONE);
                assertArrayEquals(plain.tokens(), alone.tokens(), "prompt " + i);
            }
            EngineMetrics after = s.metrics();
            assertTrue(after.specAccepted() >= 16 && after.specSteps() > 0, "guesses kept: " + after);
            assertTrue(after.specTokensPerStep() > 1.5, "tokens per step " + after.specTokensPerStep());
            // five at once, sampled with seeds: speculation only while two or fewer decode; the same answers
            List<ContinuousBatchScheduler.Handle> handles = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) handles.add(s.submit(sampled(prompts.get(i), 40 + 8 * i, i), TokenListener.NONE));
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult batched = handles.get(i).result().get(60, TimeUnit.SECONDS);
                GenerationResult plain = new Generator(m).generate(sampled(prompts.get(i), 40 + 8 * i, i), TokenListener.NONE);
                assertArrayEquals(plain.tokens(), batched.tokens(), "sampled prompt " + i);
            }
            assertEquals(0, s.metrics().kvBlocksUsed() - s.metrics().kvBlocksCached(), "blocks leaked");
            // the cached conversation holds only kept tokens: a follow-up that extends it still gives the plain answer
            GenerationResult first = s.generate(greedy(prompts.get(0), 64), TokenListener.NONE);
            int[] follow = java.util.Arrays.copyOf(prompts.get(0), prompts.get(0).length + first.tokens().length + 3);
            System.arraycopy(first.tokens(), 0, follow, prompts.get(0).length, first.tokens().length);
            int[] tail = m.tokenizer().encode(" The end.", false, false);
            follow = java.util.Arrays.copyOf(follow, prompts.get(0).length + first.tokens().length + tail.length);
            System.arraycopy(tail, 0, follow, prompts.get(0).length + first.tokens().length, tail.length);
            long cachedBefore = s.metrics().cachedPromptTokens();
            GenerationResult next = s.generate(greedy(follow, 32), TokenListener.NONE);
            assertTrue(s.metrics().cachedPromptTokens() - cachedBefore > prompts.get(0).length, "the conversation was cached");
            assertArrayEquals(new Generator(m).generate(greedy(follow, 32), TokenListener.NONE).tokens(), next.tokens());
        }
    }

    @Test
    void aDraftModelInTheEngineGivesThePlainAnswers() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"));
             TransformerModel draft = TransformerModel.load(SharedData.model("tinystories-hd64-Q4_0.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, SETTINGS.withSpeculation(Speculation.withDraftModel(4, draft).withFixedCosts()))) {
            List<int[]> prompts = new ArrayList<>();
            for (String p : new String[] {"Once upon a time, there was a little girl named Lily. She", "Tom had a red ball.", "The sun was hot. Max"}) {
                prompts.add(m.tokenizer().encode(p, true, false));
            }
            GenerationResult alone = s.generate(greedy(prompts.get(0), 80), TokenListener.NONE);
            assertArrayEquals(new Generator(m).generate(greedy(prompts.get(0), 80), TokenListener.NONE).tokens(), alone.tokens());
            assertTrue(s.metrics().specAccepted() >= 30, "the draft model's guesses are kept: " + s.metrics());
            // three at once, sampled: guesses while two or fewer decode, then plain steps; the same answers
            List<ContinuousBatchScheduler.Handle> handles = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) handles.add(s.submit(sampled(prompts.get(i), 30 + 10 * i, i), TokenListener.NONE));
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult batched = handles.get(i).result().get(60, TimeUnit.SECONDS);
                assertArrayEquals(new Generator(m).generate(sampled(prompts.get(i), 30 + 10 * i, i), TokenListener.NONE).tokens(),
                        batched.tokens(), "sampled prompt " + i);
            }
            assertEquals(0, s.metrics().kvBlocksUsed() - s.metrics().kvBlocksCached(), "blocks leaked");
        }
    }

    static GenerationRequest greedy(int[] prompt, int n) {
        return new GenerationRequest(prompt, n, Sampler.of(0f, 1f, 0), List.of(), true);
    }

    static GenerationRequest sampled(int[] prompt, int n, long seed) {
        return new GenerationRequest(prompt, n, Sampler.of(0.8f, 0.95f, seed), List.of(), true);
    }
}
