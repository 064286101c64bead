package dev.enclave.runtime.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.kv.KvPool;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import dev.enclave.runtime.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** n > 1: one prompt read once, n forks sharing its KV blocks, each exactly what an independent run gives. */
class ForkTest {

    static GenerationRequest sampled(TransformerModel m, int[] prompt, long seed, int n) {
        return new GenerationRequest(prompt, n, Sampler.of(SamplingParams.of(0.9f, 0.95f, seed)), List.of(), true);
    }

    @Test
    void forksMatchIndependentRunsAndShareThePrompt() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama3-bpe-Q8_0.gguf"));
             ContinuousBatchScheduler s = new ContinuousBatchScheduler(m, new ContinuousBatchScheduler.Settings(8, 64, 64, 16, 64L << 20, 0))) {
            // 40 tokens: two full blocks and a partial one that the forks must copy before writing
            int[] prompt = m.tokenizer().encode("Once upon a time, in a village by the sea, there lived an old fisherman who "
                    + "every morning walked down to the harbour and", true, false);
            assertTrue(prompt.length % 16 != 0, "the prompt ends inside a block");
            int n = 4;
            // both paths once first, so that both run compiled code below: interpreted and compiled Vector API code
            // may round a reduction or an exponential differently, and sampling can turn an ulp into another token
            // (another prompt, so that the cache does not hold this one)
            int[] warm = m.tokenizer().encode("Numbers and letters warm the kernels up: 1 2 3 a b c, then some more words "
                    + "to reach a few blocks of positions.", true, false);
            for (int w = 0; w < 3; w++) {
                List<GenerationRequest> wr = new ArrayList<>();
                for (int i = 0; i < 4; i++) wr.add(sampled(m, warm, 1 + i, 24)); // a batch, as the forks below
                for (ContinuousBatchScheduler.Handle h : s.submitAll(wr, List.of(TokenListener.NONE, TokenListener.NONE,
                        TokenListener.NONE, TokenListener.NONE))) h.result().get(60, TimeUnit.SECONDS);
                new Generator(m).generate(sampled(m, warm, 1, 24), TokenListener.NONE);
            }
            List<GenerationRequest> reqs = new ArrayList<>();
            List<TokenListener> listeners = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                reqs.add(sampled(m, prompt, 1000 + i, 24));
                listeners.add(TokenListener.NONE);
            }
            long cachedBefore = s.metrics().cachedPromptTokens();
            List<ContinuousBatchScheduler.Handle> hs = s.submitAll(reqs, listeners);
            Set<String> distinct = new HashSet<>();
            for (int i = 0; i < n; i++) {
                GenerationResult forked = hs.get(i).result().get(60, TimeUnit.SECONDS);
                GenerationResult alone = new Generator(m).generate(sampled(m, prompt, 1000 + i, 24), TokenListener.NONE);
                assertArrayEquals(alone.tokens(), forked.tokens(), "choice " + i);
                distinct.add(forked.text());
            }
            assertTrue(distinct.size() > 1, "different seeds give different choices");
            // the prompt was read once: the n-1 forks count as served from cache
            assertEquals((long) (n - 1) * prompt.length, s.metrics().cachedPromptTokens() - cachedBefore);
            assertEquals(0, s.metrics().kvBlocksUsed() - s.metrics().kvBlocksCached(), "blocks leaked");
        }
    }

    @Test
    void copyOnWriteCopiesOnlySharedBlocks() {
        KvPool pool = new KvPool(2, 4, 4, 8);
        BlockTable parent = new BlockTable(pool);
        assertTrue(parent.ensure(6)); // blocks: [full][partial]
        int b0 = parent.block(0), b1 = parent.block(1);
        dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(1)).keys[pool.offset(b1, 1) + 2] = 42f;
        BlockTable child = new BlockTable(pool);
        child.forkFrom(parent);
        assertEquals(2, pool.refCount(b1));
        assertTrue(child.makeWritable(6, 7));     // the child writes position 6, in the shared partial block
        int c1 = child.block(1);
        assertTrue(c1 != b1, "the child got its own copy");
        assertEquals(b0, child.block(0), "untouched blocks stay shared");
        assertEquals(42f, dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(1)).keys[pool.offset(c1, 1) + 2], "the copy carries the parent's keys");
        assertEquals(1, pool.refCount(b1));
        assertTrue(parent.makeWritable(6, 7));
        assertEquals(b1, parent.block(1), "the last owner writes in place");
        child.releaseAll();
        parent.releaseAll();
        assertEquals(8, pool.freeBlocks());
    }
}
