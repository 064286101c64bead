package dev.enclave.runtime.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.generate.ContextShift;
import dev.enclave.runtime.generate.FinishReason;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.Speculation;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.kv.KvPool;
import dev.enclave.runtime.sampling.Sampler;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The context shift: a cache whose middle blocks were dropped and whose later keys were turned to their new positions
 * answers as a cache computed afresh from the kept tokens; blocks another sequence shares are not touched; a
 * generation that fills its context goes on.
 */
class ContextShiftTest {

    private static int[] story(TransformerModel m, int n) throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        int[] t = m.tokenizer().encode(text, true, false);
        return Arrays.copyOf(t, n);
    }

    /**
     * Layer 0's keys and values depend only on the token and its position: after a shift they must equal those a fresh
     * cache computes for the kept tokens at their new positions. Every layer's moved keys must equal the keys they had
     * before, turned back by the dropped count (the rotation written out here in double precision).
     */
    @Test
    void shiftedKeysAreTheKeysOfTheirNewPositions() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            ModelConfig c = m.config();
            int[] tokens = story(m, 79);
            int keep = 16, drop = 32, kvDim = c.kvDim(), hd = c.headDim();
            for (String type : new String[] {"f32", "f16", "q8", "q8r", "q4r"}) {
                KvPlan plan = KvPlan.parse(type);
                InferenceState shifted = m.newState(128, plan);
                m.ingest(shifted, tokens);
                float[][][] before = new float[c.blockCount()][tokens.length][kvDim];
                float[] value = new float[kvDim];
                for (int l = 0; l < c.blockCount(); l++) {
                    for (int p = 0; p < tokens.length; p++) shifted.pool.layer(l).readSlot(shifted.table.slot(p), before[l][p], value);
                }
                assertTrue(m.shiftContext(shifted, keep, drop));
                assertEquals(tokens.length - drop, shifted.position());
                int[] kept = new int[tokens.length - drop];
                System.arraycopy(tokens, 0, kept, 0, keep);
                System.arraycopy(tokens, keep + drop, kept, keep, tokens.length - keep - drop);
                InferenceState fresh = m.newState(128, plan);
                m.ingest(fresh, kept);
                // quantized keys are decoded, turned and encoded again: one more rounding of their format
                double tolerance = type.equals("f32") ? 1e-5 : type.equals("f16") ? 2e-3 : type.equals("q8") || type.equals("q8r") ? 2e-2 : 0.25; // 4 bits: a step is ~13% of the largest
                float[] a = new float[kvDim], b = new float[kvDim], va = new float[kvDim], vb = new float[kvDim];
                for (int p = 0; p < kept.length; p++) {
                    shifted.pool.layer(0).readSlot(shifted.table.slot(p), a, va);
                    fresh.pool.layer(0).readSlot(fresh.table.slot(p), b, vb);
                    assertClose(b, a, tolerance, type + " layer 0 key at " + p);
                    assertClose(vb, va, 1e-6, type + " layer 0 value at " + p);
                }
                float[] want = new float[kvDim];
                for (int l = 0; l < c.blockCount(); l++) {
                    for (int p = keep; p < kept.length; p++) {
                        float[] old = before[l][p + drop];
                        rotate(old, want, c, -drop);
                        shifted.pool.layer(l).readSlot(shifted.table.slot(p), a, va);
                        assertClose(want, a, tolerance, type + " layer " + l + " key at " + p);
                    }
                    for (int p = 0; p < keep; p++) {
                        shifted.pool.layer(l).readSlot(shifted.table.slot(p), a, va);
                        assertClose(before[l][p], a, 0, type + " kept key at " + p);
                    }
                }
                // and the shifted sequence goes on: the next token's logits are finite
                float[] logits = m.forward(shifted, tokens[tokens.length - 1]);
                for (float x : logits) assertTrue(Float.isFinite(x));
            }
        }
    }

    /**
     * Blocks dropped anywhere (heavy-hitter eviction's shape): each later block's keys are its old keys turned by the
     * positions dropped before it, and layer 0 again equals a fresh cache of the kept tokens.
     */
    @Test
    void blocksDroppedAnywhereMoveEachLaterBlockByItsOwnCount() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            ModelConfig c = m.config();
            int[] tokens = story(m, 79);
            int kvDim = c.kvDim();
            for (String type : new String[] {"f32", "q8r"}) {
                KvPlan plan = KvPlan.parse(type);
                InferenceState s = m.newState(128, plan);
                m.ingest(s, tokens);
                float[][][] before = new float[c.blockCount()][tokens.length][kvDim];
                float[] value = new float[kvDim];
                for (int l = 0; l < c.blockCount(); l++) {
                    for (int p = 0; p < tokens.length; p++) s.pool.layer(l).readSlot(s.table.slot(p), before[l][p], value);
                }
                assertTrue(m.dropBlocks(s, new int[] {1, 3}));
                assertEquals(tokens.length - 32, s.position());
                int[] kept = new int[tokens.length - 32];
                int[] oldPos = new int[kept.length];
                for (int p = 0, k = 0; p < tokens.length; p++) {
                    if (p / 16 == 1 || p / 16 == 3) continue;
                    oldPos[k] = p;
                    kept[k++] = tokens[p];
                }
                InferenceState fresh = m.newState(128, plan);
                m.ingest(fresh, kept);
                double tolerance = type.equals("f32") ? 1e-5 : 2e-2;
                float[] a = new float[kvDim], b = new float[kvDim], va = new float[kvDim], vb = new float[kvDim], want = new float[kvDim];
                for (int p = 0; p < kept.length; p++) {
                    s.pool.layer(0).readSlot(s.table.slot(p), a, va);
                    fresh.pool.layer(0).readSlot(fresh.table.slot(p), b, vb);
                    assertClose(b, a, tolerance, type + " layer 0 key at " + p);
                    for (int l = 0; l < c.blockCount(); l++) {
                        s.pool.layer(l).readSlot(s.table.slot(p), a, va);
                        rotate(before[l][oldPos[p]], want, c, p - oldPos[p]);
                        assertClose(want, a, tolerance, type + " layer " + l + " key at " + p + " (was " + oldPos[p] + ")");
                    }
                }
            }
        }
    }

    /**
     * The attention counts heavy-hitter eviction reads: every query of every head spreads exactly 1 over the positions
     * it attends, so after a prompt (its last token counts) and n decoded tokens the slots hold (1 + n) x layers x
     * heads in all; a block shared with a fork is never offered for eviction.
     */
    @Test
    void attentionCountsAddUpAndSharedBlocksAreNeverEvicted() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            ModelConfig c = m.config();
            int[] tokens = story(m, 70);
            KvPool pool = m.newKvPool(16, 8L << 20);
            assertTrue(m.trackAttention(pool));
            InferenceState s = m.newState(128, pool);
            m.ingest(s, Arrays.copyOf(tokens, 60));
            for (int i = 60; i < 70; i++) m.forward(s, tokens[i]);
            double total = 0;
            for (int l = 0; l < c.blockCount(); l++) total += pool.layer(l).attentionReceived(0, pool.positions());
            assertEquals(11.0 * c.blockCount() * c.headCount(), total, 1e-3 * total);
            int[] chosen = m.heavyHitterBlocks(s, 16, 16, 2);
            assertEquals(2, chosen.length);
            for (int b : chosen) assertTrue(b >= 1 && b < 3, "between the sinks and the recent window: " + Arrays.toString(chosen));
            InferenceState child = m.newState(128, pool);
            s.forkInto(child);
            assertEquals(null, m.heavyHitterBlocks(child, 16, 16, 1), "every block is shared with the parent");
            child.release();
            s.release();
        }
    }

    @Test
    void aHeavyHitterShiftGoesOnTheSameWayEveryTime() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            int[] prompt = m.tokenizer().encode("Once upon a time, there was a little girl named Lily. She", true, false);
            GenerationRequest req = new GenerationRequest(prompt, 200, Sampler.of(0f, 1f, 0), List.of(), true);
            GenerationResult stops = new Generator(m).generate(m.newState(96), req, TokenListener.NONE);
            Generator heavy = new Generator(m, Speculation.OFF, new ContextShift(4, true));
            GenerationResult a = heavy.generate(m.newState(96), req, TokenListener.NONE);
            assertEquals(200, a.tokens().length);
            assertTrue(heavy.shifts() >= 3, "shifts: " + heavy.shifts());
            assertArrayEquals(stops.tokens(), Arrays.copyOf(a.tokens(), stops.tokens().length));
            assertArrayEquals(a.tokens(), heavy.generate(m.newState(96), req, TokenListener.NONE).tokens());
        }
    }

    /** RoPE by {@code delta} positions on every head's pairs (normal style: pairs of neighbours), in double. */
    private static void rotate(float[] src, float[] dst, ModelConfig c, int delta) {
        int hd = c.headDim(), dims = c.ropeDimensions();
        System.arraycopy(src, 0, dst, 0, src.length);
        for (int h = 0; h < c.headCountKv(); h++) {
            for (int i = 0; i < dims / 2; i++) {
                double theta = delta * Math.pow(c.ropeFreqBase(), -2.0 * i / dims) / c.ropeScale();
                double x0 = src[h * hd + 2 * i], x1 = src[h * hd + 2 * i + 1];
                dst[h * hd + 2 * i] = (float) (x0 * Math.cos(theta) - x1 * Math.sin(theta));
                dst[h * hd + 2 * i + 1] = (float) (x0 * Math.sin(theta) + x1 * Math.cos(theta));
            }
        }
    }

    private static void assertClose(float[] want, float[] got, double tolerance, String what) {
        double scale = 0, max = 0;
        for (int i = 0; i < want.length; i++) {
            scale = Math.max(scale, Math.abs(want[i]));
            max = Math.max(max, Math.abs(want[i] - got[i]));
        }
        assertTrue(max <= tolerance * Math.max(scale, 1e-6), what + ": differs by " + max + " (largest " + scale + ")");
    }

    @Test
    void sharedBlocksAreNotRewritten() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            int[] t = story(m, 66);
            int[] tokens = Arrays.copyOf(t, 64);
            KvPool pool = m.newKvPool(16, 8L << 20);
            InferenceState parent = m.newState(128, pool);
            m.ingest(parent, tokens);
            InferenceState child = m.newState(128, pool);
            parent.forkInto(child);
            int usedBefore = pool.usedBlocks();
            assertTrue(m.shiftContext(child, 16, 16));
            // the child copied the two blocks it moved and let go of the one it dropped; the parent's are intact
            assertEquals(usedBefore + 2, pool.usedBlocks());
            float[] fromParent = m.forward(parent, t[64]).clone();
            InferenceState alone = m.newState(128);
            m.ingest(alone, tokens);
            float[] want = m.forward(alone, t[64]);
            double scale = 0, max = 0;
            for (int i = 0; i < want.length; i++) {
                scale = Math.max(scale, Math.abs(want[i]));
                max = Math.max(max, Math.abs(want[i] - fromParent[i]));
            }
            // another pool sums in another order (1e-7); a rewritten block would move the logits by whole percents
            assertTrue(max <= 1e-5 * scale, "the parent reads what it wrote: " + max);
            child.release();
            parent.release();
            assertEquals(0, pool.usedBlocks());
        }
    }

    @Test
    void aGenerationThatFillsItsContextGoesOn() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            int[] prompt = m.tokenizer().encode("Once upon a time, there was a little girl named Lily. She", true, false);
            GenerationRequest req = new GenerationRequest(prompt, 200, Sampler.of(0f, 1f, 0), List.of(), true);
            GenerationResult stops = new Generator(m).generate(m.newState(96), req, TokenListener.NONE);
            assertEquals(FinishReason.LENGTH, stops.finishReason());
            // the last token is sampled from the last position's logits: one more than the positions left
            assertEquals(96 - prompt.length + 1, stops.tokens().length, "without a shift the answer ends with the context");
            Generator shifting = new Generator(m, Speculation.OFF, ContextShift.SINKS);
            GenerationResult goesOn = shifting.generate(m.newState(96), req, TokenListener.NONE);
            assertEquals(200, goesOn.tokens().length);
            assertTrue(shifting.shifts() >= 3, "shifts: " + shifting.shifts());
            // up to the first shift the answers are the same
            assertArrayEquals(Arrays.copyOf(stops.tokens(), stops.tokens().length), Arrays.copyOf(goesOn.tokens(), stops.tokens().length));
            // with speculation the shifted answer is the same again
            Generator both = new Generator(m, Speculation.NGRAM.withFixedCosts(), ContextShift.SINKS);
            assertArrayEquals(goesOn.tokens(), both.generate(m.newState(96), req, TokenListener.NONE).tokens());
            // a draft model's own 96 positions fill too: it starts again from the recent half and keeps guessing
            try (TransformerModel draft = TransformerModel.load(SharedData.model("tinystories-hd64-Q4_0.gguf"))) {
                GenerationResult drafted = new Generator(m, Speculation.withDraftModel(4, draft).withFixedCosts(), ContextShift.SINKS)
                        .generate(m.newState(96), req, TokenListener.NONE);
                assertArrayEquals(goesOn.tokens(), drafted.tokens());
                assertTrue(drafted.speculation().accepted() > 120, "guesses kept past the draft's own context: " + drafted.speculation());
            }
        }
    }

}
