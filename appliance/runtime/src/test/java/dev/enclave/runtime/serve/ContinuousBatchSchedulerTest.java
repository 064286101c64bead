package dev.enclave.runtime.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.generate.FinishReason;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.GreedySampler;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ContinuousBatchSchedulerTest {

    static GenerationRequest greedy(TransformerModel m, String prompt, int n) {
        return new GenerationRequest(m.tokenizer().encode(prompt, true, false), n, new GreedySampler(), List.of(), true);
    }

    /** Many sequences batched together produce exactly what each produces alone. */
    @Test
    void concurrentSequencesMatchSequentialOnes() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama3-bpe-Q8_0.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, new ContinuousBatchScheduler.Settings(8, 64, 64, 16, 64L << 20, 0))) {
            String[] prompts = {"The quick brown fox", "In 2024, 3 + 4 = 7!", "Hello world, this is a longer prompt that spans more than one KV block for sure",
                    "a", "Once upon a time there was", "The lazy dog sleeps", "Numbers: 1 2 3 4 5 6 7 8 9", "Why?"};
            List<ContinuousBatchScheduler.Handle> handles = new ArrayList<>();
            for (String p : prompts) handles.add(s.submit(greedy(m, p, 12), TokenListener.NONE));
            for (int i = 0; i < prompts.length; i++) {
                GenerationResult batched = handles.get(i).result().get(60, TimeUnit.SECONDS);
                GenerationResult alone = new Generator(m).generate(greedy(m, prompts[i], 12), TokenListener.NONE);
                assertArrayEquals(alone.tokens(), batched.tokens(), "prompt " + i);
                assertEquals(alone.text(), batched.text());
            }
            assertEquals(0, s.metrics().kvBlocksUsed() - s.metrics().kvBlocksCached(), "blocks leaked");
        }
    }

    /** A repeated long prompt starts from the cached prefix and still gives the same answer. */
    @Test
    void sharedPrefixIsReusedAndExact() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama2-spm-Q4_0.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, ContinuousBatchScheduler.Settings.defaults())) {
            String system = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ".repeat(4);
            GenerationResult first = s.generate(greedy(m, system + "One day", 10), TokenListener.NONE);
            long cachedBefore = s.metrics().cachedPromptTokens();
            GenerationResult second = s.generate(greedy(m, system + "One day", 10), TokenListener.NONE);
            GenerationResult other = s.generate(greedy(m, system + "The end", 10), TokenListener.NONE);
            assertArrayEquals(first.tokens(), second.tokens());
            long reused = s.metrics().cachedPromptTokens() - cachedBefore;
            assertTrue(reused >= 2 * (m.tokenizer().encode(system, true, false).length / 16 - 1) * 16, "reused " + reused);
            GenerationResult fresh = new Generator(m).generate(greedy(m, system + "The end", 10), TokenListener.NONE);
            assertArrayEquals(fresh.tokens(), other.tokens());
            assertTrue(s.metrics().prefixHitRate() > 0.3, "hit rate " + s.metrics().prefixHitRate());
        }
    }

    @Test
    void cancellationFreesBlocksAndQueueOverflowIsRefused() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama2-spm-F32.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, new ContinuousBatchScheduler.Settings(1, 2, 64, 16, 16L << 20, 0))) {
            CountDownLatch started = new CountDownLatch(1);
            ContinuousBatchScheduler.Handle running = s.submit(greedy(m, "Once upon a time", 400), (t, x) -> {
                started.countDown();
                return true;
            });
            assertTrue(started.await(30, TimeUnit.SECONDS));
            s.submit(greedy(m, "a", 4), TokenListener.NONE);
            s.submit(greedy(m, "b", 4), TokenListener.NONE);
            assertThrows(QueueFullException.class, () -> s.submit(greedy(m, "c", 4), TokenListener.NONE));
            running.cancel();
            GenerationResult r = running.result().get(30, TimeUnit.SECONDS);
            assertEquals(FinishReason.CANCELLED, r.finishReason());
            assertTrue(r.completionTokens() < 400);
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (s.metrics().completed() < 3 && System.nanoTime() < deadline) Thread.sleep(10);
            assertEquals(3, s.metrics().completed());
            assertEquals(s.metrics().kvBlocksCached(), s.metrics().kvBlocksUsed(), "only cached prefixes may hold blocks");
        }
    }

    /** A conversation's next turn (prompt + answer + more) starts after the answer, which the cache kept, and is exact. */
    @Test
    void followUpTurnReusesTheAnswer() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama2-spm-Q4_0.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, ContinuousBatchScheduler.Settings.defaults())) {
            int[] prompt = m.tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved to play", true, false);
            GenerationResult first = s.generate(new GenerationRequest(prompt, 40, new GreedySampler(), List.of(), true), TokenListener.NONE);
            assertEquals(40, first.tokens().length);
            int[] more = m.tokenizer().encode(" The end. Then", false, false);
            int[] next = new int[prompt.length + first.tokens().length + more.length];
            System.arraycopy(prompt, 0, next, 0, prompt.length);
            System.arraycopy(first.tokens(), 0, next, prompt.length, first.tokens().length);
            System.arraycopy(more, 0, next, prompt.length + first.tokens().length, more.length);
            long cachedBefore = s.metrics().cachedPromptTokens();
            GenerationResult second = s.generate(new GenerationRequest(next, 10, new GreedySampler(), List.of(), true), TokenListener.NONE);
            long reused = s.metrics().cachedPromptTokens() - cachedBefore;
            // the answer's last token was sampled but never fed, so the KV covers prompt + 39 positions, all reused
            // (the partly filled last block too)
            assertEquals(prompt.length + 39, reused, "positions reused");
            assertTrue((prompt.length + 39) % 16 != 0, "the test needs a partly filled last block");
            assertTrue(reused > prompt.length, "the answer's blocks were reused too");
            GenerationResult fresh = new Generator(m).generate(new GenerationRequest(next, 10, new GreedySampler(), List.of(), true), TokenListener.NONE);
            assertArrayEquals(fresh.tokens(), second.tokens());
        }
    }

    /** Prompt chunks go to the shortest prompt first: a short request is not queued behind a long one, which still ends. */
    @Test
    void shortPromptIsNotQueuedBehindALongOne() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama2-spm-Q4_0.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, new ContinuousBatchScheduler.Settings(8, 64, 16, 16, 64L << 20, 0))) {
            java.util.concurrent.atomic.AtomicInteger order = new java.util.concurrent.atomic.AtomicInteger();
            int[] firstTokenOrder = {-1, -1};
            String longPrompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ".repeat(12);
            ContinuousBatchScheduler.Handle longOne = s.submit(greedy(m, longPrompt, 4), (t, x) -> {
                if (firstTokenOrder[0] < 0) firstTokenOrder[0] = order.getAndIncrement();
                return true;
            });
            ContinuousBatchScheduler.Handle shortOne = s.submit(greedy(m, "The end", 4), (t, x) -> {
                if (firstTokenOrder[1] < 0) firstTokenOrder[1] = order.getAndIncrement();
                return true;
            });
            GenerationResult l = longOne.result().get(60, TimeUnit.SECONDS);
            GenerationResult sh = shortOne.result().get(60, TimeUnit.SECONDS);
            assertEquals(0, firstTokenOrder[1], "the short prompt answered first");
            assertEquals(1, firstTokenOrder[0]);
            assertArrayEquals(new Generator(m).generate(greedy(m, longPrompt, 4), TokenListener.NONE).tokens(), l.tokens());
            assertArrayEquals(new Generator(m).generate(greedy(m, "The end", 4), TokenListener.NONE).tokens(), sh.tokens());
        }
    }
}
