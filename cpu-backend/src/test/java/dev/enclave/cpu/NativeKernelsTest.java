package dev.enclave.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.enclave.runtime.backend.cpu.NativeKernels;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.quant.Quantizer;
import dev.enclave.runtime.tensor.FloatTensor;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The native products against a plain Java computation of the same thing: the activations as the library quantized
 * them (read back from its buffer), the weights as ggml's decoders read them, sums in double. The integer sums are
 * exact on every path, so only float rounding separates the two (1e-5 of the row's scale). Every instruction set this
 * CPU has runs (baseline, AVX2, AVX-512 VNNI); the aarch64 library runs the same cases under qemu-aarch64.
 */
class NativeKernelsTest {

    private static final NativeCpuKernels K = new NativeCpuKernels();
    private final Arena arena = Arena.ofAuto();

    record Case(GGMLType type, int rows, int cols, int tokens, byte[] weights, float[] x) {
    }

    static List<Case> cases() {
        SplittableRandom rnd = new SplittableRandom(21);
        List<Case> all = new ArrayList<>();
        for (GGMLType type : new GGMLType[] {GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q6_K, GGMLType.Q4_K, GGMLType.F16}) {
            // one block, an odd number of blocks (the AVX-512 tail), a 1B layer's width; 1 to 9 tokens (the 4-token groups' tails)
            int[][] shapes = type == GGMLType.Q6_K || type == GGMLType.Q4_K
                    ? new int[][] {{5, 256, 1}, {37, 768, 3}, {64, 2048, 4}, {3, 8192, 9}, {16, 512, 5}, {48, 256, 1}, {6, 512, 7}, {5, 256, 6}}
                    : type == GGMLType.F16 // F16: also widths off the vector length, and tiles' row tails
                    ? new int[][] {{5, 32, 1}, {37, 96, 3}, {64, 2048, 4}, {3, 8192, 9}, {18, 40, 5}, {7, 7, 2}, {9, 2051, 6}, {33, 2048, 1}}
                    : new int[][] {{5, 32, 1}, {37, 96, 3}, {64, 2048, 4}, {3, 8192, 9}, {16, 160, 5}, {48, 96, 1}};
            for (int[] s : shapes) {
                float[] w = new float[s[0] * s[1]];
                for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextGaussian() * 0.05);
                float[] x = new float[s[2] * s[1]];
                for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (i % 97 == 0 ? 8 : 1)); // outliers
                all.add(new Case(type, s[0], s[1], s[2], Quantizer.quantize(type, w, w.length), x));
            }
        }
        return all;
    }

    @Test
    void everyInstructionSetMatchesTheReference() {
        int best = K.isaCode();
        assertTrue(K.supports(GGMLType.Q4_0) && K.supports(GGMLType.Q8_0));
        if (best > 0) assertTrue(K.supports(GGMLType.F16), "F16 runs natively with AVX2, AVX-512 and NEON");
        if (best >= 1 && best != 3) assertTrue(K.supports(GGMLType.Q6_K), "Q6_K runs natively with AVX2, VNNI and dotprod");
        if (best >= 1 && best != 3) assertTrue(K.supports(GGMLType.Q4_K), "Q4_K runs natively with AVX2, VNNI and dotprod");
        try {
            for (int isa = 0; isa <= best; isa++) {
                if (best >= 3 && isa > 0 && isa < 3) continue; // Arm: the x86 codes run the baseline
                assertEquals(isa, K.useIsa(isa));
                if (isa == 1) assertTrue(K.supports(GGMLType.Q4_K) && K.supports(GGMLType.Q6_K), "K-quants run natively on AVX2");
                for (Case c : cases()) {
                    float[] got = run(c);
                    float[] want = reference(c);
                    compare(want, got, c + " on " + NativeCpuKernels.isaName(isa), c.type);
                    if (K.repackedBytes(c.type, c.rows, c.cols) > 0) {
                        compare(want, runRepacked(c), c + " repacked, on " + NativeCpuKernels.isaName(isa), c.type);
                        repacked++;
                    }
                }
            }
        } finally {
            K.useIsa(best);
        }
        assertEquals(best, K.isaCode());
        if (best == 2) assertTrue(repacked >= 12, "the VNNI repacked products ran, Q6_K's and Q4_K's too: " + repacked);
    }

    private int repacked;

    /**
     * The AMX tiles (a prompt's repacked Q4_0, Q8_0 and Q4_K products, 32 tokens at a time, the rest on VNNI) give the same
     * floats as the VNNI registers, bit for bit, and match the reference; skipped where the CPU has no AMX-INT8.
     */
    @Test
    void amxTilesMatchTheVectorPath() {
        boolean present = cpuFlags().contains(" amx_int8");
        assumeTrue(present && K.isaCode() == 2, "no AMX-INT8 on this CPU");
        assertTrue(K.amx(), "AMX-INT8 is present: the tiles run");
        SplittableRandom rnd = new SplittableRandom(5);
        int cases = 0;
        try {
            for (GGMLType type : new GGMLType[] {GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K}) {
                // one pair of token tiles, pairs and a tail, group counts off the four-group blocking, one block and many
                int[][] shapes = type == GGMLType.Q4_K
                        ? new int[][] {{16, 256, 32}, {48, 2048, 37}, {112, 256, 64}, {80, 8192, 33}, {16, 512, 70}}
                        : new int[][] {{16, 32, 32}, {48, 2048, 37}, {112, 96, 64}, {80, 8192, 33}, {16, 256, 70}};
                for (int[] s : shapes) {
                    float[] w = new float[s[0] * s[1]];
                    for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextGaussian() * 0.05);
                    float[] x = new float[s[2] * s[1]];
                    for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (i % 97 == 0 ? 8 : 1));
                    Case c = new Case(type, s[0], s[1], s[2], Quantizer.quantize(type, w, w.length), x);
                    run(c); // quantizes the activations
                    assertTrue(K.useAmx(true));
                    float[] tiles = runRepacked(c);
                    assertTrue(!K.useAmx(false) && !K.amx());
                    float[] vectors = runRepacked(c);
                    for (int i = 0; i < tiles.length; i++) {
                        assertEquals(Float.floatToRawIntBits(vectors[i]), Float.floatToRawIntBits(tiles[i]), c + ": output " + i + " " + vectors[i] + " vs " + tiles[i]);
                    }
                    compare(reference(c), tiles, c + " on AMX", type);
                    cases++;
                }
            }
        } finally {
            K.useAmx(true);
        }
        assertEquals(15, cases);
    }

    /**
     * F16 prompts on AMX-BF16 tiles (each half split exactly into two bfloat16 parts, four exact products summed in
     * float): the reference's values to F16's tolerance, another order of the same sums than the vector tiles (so not
     * bit for bit: some output differs), and a row's value independent of how the threads split the rows. Skipped where
     * the CPU has no AMX-BF16.
     */
    @Test
    void f16PromptsOnAmxTilesMatchTheReference() {
        String flags = cpuFlags();
        assumeTrue(flags.contains(" amx_bf16") && flags.contains(" avx512_bf16") && K.isaCode() == 2, "no AMX-BF16 on this CPU");
        SplittableRandom rnd = new SplittableRandom(8);
        int differ = 0;
        try {
            // one tile of each; a short last row group and token tile; two column slices; two token blocks; 32 tokens
            for (int[] s : new int[][] {{16, 32, 32}, {37, 2048, 64}, {40, 8192, 33}, {18, 96, 70}, {5, 2048, 32}, {64, 4096, 128}}) {
                float[] w = new float[s[0] * s[1]];
                for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextGaussian() * 0.05);
                float[] x = new float[s[2] * s[1]];
                for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (i % 97 == 0 ? 8 : 1));
                Case c = new Case(GGMLType.F16, s[0], s[1], s[2], Quantizer.quantize(GGMLType.F16, w, w.length), x);
                assertTrue(K.useAmx(true));
                float[] tiles = run(c);
                compare(reference(c), tiles, c + " on AMX", GGMLType.F16);
                float[] split = runSplit(c, 1, Math.min(17, c.rows));
                for (int i = 0; i < tiles.length; i++) {
                    assertEquals(Float.floatToRawIntBits(tiles[i]), Float.floatToRawIntBits(split[i]), c + ": output " + i + " with other row splits");
                }
                assertTrue(!K.useAmx(false));
                float[] vectors = run(c);
                for (int i = 0; i < tiles.length; i++) {
                    if (Float.floatToRawIntBits(vectors[i]) != Float.floatToRawIntBits(tiles[i])) differ++;
                }
            }
        } finally {
            K.useAmx(true);
        }
        assertTrue(differ > 0, "the tiles ran: their sums are in another order than the vector tiles'");
    }

    /**
     * One-token products with and without the prefetching decode (Intel's default: several row groups' streams at a
     * time for the repacked layouts, Q4_0, Q8_0, Q6_K and Q4_K; six rows' through the tiles for F16): the repacked products give the same floats
     * bit for bit, and both match the reference.
     */
    @Test
    void decodeStreamsMatchOneStream() {
        assumeTrue(K.isaCode() == 2, "the repacked layout and the tiles' decode are AVX-512's");
        long before = K.usePrefetch(0);
        SplittableRandom rnd = new SplittableRandom(9);
        int cases = 0;
        try {
            for (GGMLType type : new GGMLType[] {GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q6_K, GGMLType.Q4_K, GGMLType.F16}) {
                // group counts off the eight streams, one group, a 1B layer's width
                boolean k = type == GGMLType.Q6_K || type == GGMLType.Q4_K;
                for (int[] s : k ? new int[][] {{16, 256}, {48, 2048}, {208, 256}, {144, 8192}} : new int[][] {{16, 64}, {48, 2048}, {208, 96}, {144, 8192}}) {
                    float[] w = new float[s[0] * s[1]];
                    for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextGaussian() * 0.05);
                    float[] x = new float[s[1]];
                    for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (i % 97 == 0 ? 8 : 1));
                    Case c = new Case(type, s[0], s[1], 1, Quantizer.quantize(type, w, w.length), x);
                    K.usePrefetch(0);
                    float[] one = run(c);
                    float[] onePacked = type == GGMLType.F16 ? null : runRepacked(c);
                    K.usePrefetch(1024);
                    float[] many = run(c);
                    float[] manyPacked = type == GGMLType.F16 ? null : runRepacked(c);
                    float[] want = reference(c);
                    compare(want, many, c + " prefetching", type);
                    compare(want, one, c + " one stream", type);
                    if (onePacked != null) {
                        compare(want, manyPacked, c + " repacked, streams", type);
                        for (int i = 0; i < onePacked.length; i++) {
                            assertEquals(Float.floatToRawIntBits(onePacked[i]), Float.floatToRawIntBits(manyPacked[i]), c + ": row " + i);
                        }
                    }
                    cases++;
                }
            }
        } finally {
            K.usePrefetch(before);
        }
        assertEquals(20, cases);
    }

    private static String cpuFlags() {
        try {
            return Files.readString(Path.of("/proc/cpuinfo"));
        } catch (IOException e) {
            return "";
        }
    }

    /** The repacked layout's product, its row groups in two calls as the workers split them. */
    private float[] runRepacked(Case c) {
        MemorySegment w = arena.allocate(c.weights.length, 64);
        MemorySegment.copy(c.weights, 0, w, ValueLayout.JAVA_BYTE, 0, c.weights.length);
        MemorySegment p = arena.allocate(K.repackedBytes(c.type, c.rows, c.cols), 64);
        int groups = c.rows / NativeCpuKernels.GROUP;
        K.repack(c.type, w, c.cols, 0, groups / 2, p);
        K.repack(c.type, w, c.cols, groups / 2, groups, p);
        MemorySegment out = arena.allocate((long) c.rows * c.tokens * 4, 64);
        K.matmulRepacked(c.type, p, c.cols, 0, groups / 2, lastQuantized, c.tokens, out, c.rows);
        K.matmulRepacked(c.type, p, c.cols, groups / 2, groups, lastQuantized, c.tokens, out, c.rows);
        float[] r = new float[c.rows * c.tokens];
        MemorySegment.copy(out, ValueLayout.JAVA_FLOAT, 0, r, 0, r.length);
        return r;
    }

    /**
     * Attention over a float16 cache, on every instruction set: scores (scaled, soft-capped) and att-weighted value sums
     * of rows gathered anywhere in the cache, against double-precision Java over the same halves; rows outside the
     * cache are refused before C.
     */
    @Test
    void float16AttentionMatchesJavaOnEveryInstructionSet() {
        int best = K.isaCode();
        SplittableRandom rnd = new SplittableRandom(33);
        int checked = 0;
        try {
            for (int isa = 0; isa <= best; isa++) {
                if (best >= 3 && isa > 0 && isa < 3) continue;
                K.useIsa(isa);
                assertEquals(best >= 3 ? false : isa >= 1, K.attends(), "vector attention on AVX2 and AVX-512 only");
                for (int[] shape : new int[][] {{4, 64, 37}, {8, 128, 70}, {4, 16, 5}, {3, 8, 9}}) {
                    int heads = shape[0], headDim = shape[1], n = shape[2], slots = 200, kvDim = 2 * headDim;
                    short[] k = new short[slots * kvDim], v = new short[slots * kvDim];
                    for (int i = 0; i < k.length; i++) {
                        k[i] = Float.floatToFloat16((float) rnd.nextGaussian());
                        v[i] = Float.floatToFloat16((float) rnd.nextGaussian());
                    }
                    int[] rows = new int[n + 3];
                    for (int t = 0; t < n; t++) rows[t] = rnd.nextInt(slots) * kvDim + headDim; // the second KV head
                    float[] q = new float[3 + heads * headDim];
                    for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextGaussian();
                    for (float cap : new float[] {0f, 3f}) {
                        int stride = n + 5;
                        float[] att = new float[2 + heads * stride];
                        K.attentionScores(true, MemorySegment.ofArray(k), MemorySegment.ofArray(rows), n, MemorySegment.ofArray(q), 3, heads, headDim, 0.125f, cap, MemorySegment.ofArray(att), 2, stride);
                        float[] p = new float[2 + heads * stride];
                        for (int h = 0; h < heads; h++) {
                            for (int t = 0; t < n; t++) {
                                double dot = 0;
                                for (int i = 0; i < headDim; i++) dot += q[3 + h * headDim + i] * (double) Float.float16ToFloat(k[rows[t] + i]);
                                double want = dot * 0.125;
                                if (cap > 0) want = Math.tanh(want / cap) * cap;
                                assertEquals(want, att[2 + h * stride + t], 1e-4 * Math.max(1, Math.abs(want)),
                                        "score head " + h + " row " + t + " " + heads + "x" + headDim + " cap " + cap + " on " + NativeCpuKernels.isaName(isa));
                                p[2 + h * stride + t] = (float) rnd.nextDouble();
                            }
                        }
                        float[] out = new float[1 + heads * headDim];
                        java.util.Arrays.fill(out, 99f); // overwritten, not added to
                        K.attentionValues(true, MemorySegment.ofArray(v), MemorySegment.ofArray(rows), n, MemorySegment.ofArray(p), 2, stride, heads, headDim, MemorySegment.ofArray(out), 1);
                        for (int h = 0; h < heads; h++) {
                            for (int i = 0; i < headDim; i++) {
                                double want = 0;
                                for (int t = 0; t < n; t++) want += p[2 + h * stride + t] * (double) Float.float16ToFloat(v[rows[t] + i]);
                                assertEquals(want, out[1 + h * headDim + i], 1e-4 * Math.max(1, Math.abs(want)), "value head " + h + " dim " + i);
                            }
                        }
                        // the float32 twins on the same values
                        float[] kf = new float[k.length], vf = new float[v.length];
                        for (int i = 0; i < k.length; i++) {
                            kf[i] = Float.float16ToFloat(k[i]);
                            vf[i] = Float.float16ToFloat(v[i]);
                        }
                        float[] att32 = new float[att.length], out32 = new float[out.length];
                        K.attentionScores(false, MemorySegment.ofArray(kf), MemorySegment.ofArray(rows), n, MemorySegment.ofArray(q), 3, heads, headDim, 0.125f, cap, MemorySegment.ofArray(att32), 2, stride);
                        K.attentionValues(false, MemorySegment.ofArray(vf), MemorySegment.ofArray(rows), n, MemorySegment.ofArray(p), 2, stride, heads, headDim, MemorySegment.ofArray(out32), 1);
                        for (int i = 0; i < att.length; i++) assertEquals(att[i], att32[i], 1e-5 * Math.max(1, Math.abs(att[i])), "f32 score " + i);
                        for (int i = 1; i < out.length; i++) assertEquals(out[i], out32[i], 1e-5 * Math.max(1, Math.abs(out[i])), "f32 value " + i);
                        checked++;
                    }
                    rows[1] = k.length - headDim + 1;
                    assertThrows(IllegalArgumentException.class, () -> K.attentionScores(true, MemorySegment.ofArray(k), MemorySegment.ofArray(rows), n, MemorySegment.ofArray(q), 3, heads, headDim, 1f, 0f, MemorySegment.ofArray(new float[heads * (n + 5)]), 0, n + 5));
                }
            }
        } finally {
            K.useIsa(best);
        }
        assertTrue(checked >= 8, "cases checked: " + checked);
    }

    /**
     * Attention over 8- and 4-bit cache rows (the runtime's own KvRows, ggml's rounding): the native scores and value
     * sums against the Java decoder's rows, in double, on every instruction set (AVX-512's path and the scalar one).
     */
    @Test
    void quantizedAttentionMatchesTheJavaDecoder() {
        int best = K.isaCode();
        SplittableRandom rnd = new SplittableRandom(35);
        int heads = 4, headDim = 64, kvDim = 128, slots = 60, n = 41;
        try {
            for (int isa = 0; isa <= best; isa++) {
                if (best >= 3 && isa > 0 && isa < 3) continue;
                K.useIsa(isa);
                assertEquals(isa == 2, K.attendsQuantized(), "vector attention over 8/4-bit rows on AVX-512 only");
                for (dev.enclave.runtime.backend.KvFormat f : new dev.enclave.runtime.backend.KvFormat[] {
                        dev.enclave.runtime.backend.KvFormat.Q8, dev.enclave.runtime.backend.KvFormat.Q4}) {
                    dev.enclave.runtime.backend.KvRows kv = dev.enclave.runtime.backend.KvRows.of(f, slots, kvDim, headDim);
                    for (int slot = 0; slot < slots; slot++) {
                        float[] x = new float[kvDim];
                        for (int i = 0; i < kvDim; i++) x[i] = (float) (rnd.nextGaussian() * (1 + slot % 3));
                        kv.write(slot, x, 0);
                    }
                    MemorySegment[] seg = f == dev.enclave.runtime.backend.KvFormat.Q8 ? ((dev.enclave.runtime.backend.KvRows.Q8) kv).segments()
                            : ((dev.enclave.runtime.backend.KvRows.Q4) kv).segments();
                    int bits = f == dev.enclave.runtime.backend.KvFormat.Q8 ? 8 : 4;
                    int[] rows = new int[n], slotOf = new int[n];
                    for (int t = 0; t < n; t++) {
                        slotOf[t] = rnd.nextInt(slots);
                        rows[t] = slotOf[t] * kvDim + headDim; // the second KV head
                    }
                    float[] q = new float[heads * headDim];
                    for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextGaussian();
                    float[] att = new float[heads * n], out = new float[heads * headDim], row = new float[headDim];
                    K.attentionScoresQ(bits, seg[0], seg[1], MemorySegment.ofArray(rows), n, MemorySegment.ofArray(q), 0, heads, headDim, 0.5f, 0f,
                            MemorySegment.ofArray(att), 0, n);
                    for (int t = 0; t < n; t++) {
                        kv.decode(slotOf[t], headDim, headDim, row, 0);
                        for (int h = 0; h < heads; h++) {
                            double dot = 0;
                            for (int i = 0; i < headDim; i++) dot += q[h * headDim + i] * (double) row[i];
                            assertEquals(dot * 0.5, att[h * n + t], 1e-4 * Math.max(1, Math.abs(dot)), f + " score " + t + "/" + h + " on " + NativeCpuKernels.isaName(isa));
                        }
                    }
                    float[] p = new float[heads * n];
                    for (int i = 0; i < p.length; i++) p[i] = (float) rnd.nextDouble();
                    K.attentionValuesQ(bits, seg[0], seg[1], MemorySegment.ofArray(rows), n, MemorySegment.ofArray(p), 0, n, heads, headDim,
                            MemorySegment.ofArray(out), 0);
                    double[] want = new double[heads * headDim];
                    for (int t = 0; t < n; t++) {
                        kv.decode(slotOf[t], headDim, headDim, row, 0);
                        for (int h = 0; h < heads; h++) for (int i = 0; i < headDim; i++) want[h * headDim + i] += p[h * n + t] * (double) row[i];
                    }
                    for (int i = 0; i < want.length; i++) assertEquals(want[i], out[i], 1e-4 * Math.max(1, Math.abs(want[i])), f + " value " + i);
                    rows[3] = 17; // not a group's start
                    assertThrows(IllegalArgumentException.class, () -> K.attentionScoresQ(bits, seg[0], seg[1], MemorySegment.ofArray(rows), n,
                            MemorySegment.ofArray(q), 0, heads, headDim, 1f, 0f, MemorySegment.ofArray(new float[heads * n]), 0, n));
                }
            }
        } finally {
            K.useIsa(best);
        }
    }

    /** Embedding rows decoded by the library: bit for bit what the Java decoders give, from any offset. */
    @Test
    void dequantizedRowsMatchTheJavaDecoders() {
        int checked = 0;
        for (Case c : cases()) {
            MemorySegment w = arena.allocate(c.weights.length, 64);
            MemorySegment.copy(c.weights, 0, w, ValueLayout.JAVA_BYTE, 0, c.weights.length);
            FloatTensor t = FloatTensor.of(c.type, w, (long) c.rows * c.cols);
            long[][] ranges = {{0, c.cols}, {(long) (c.rows - 1) * c.cols, c.cols}, {c.cols / 2 + 3, Math.min(c.cols, 77)}};
            for (long[] r : ranges) {
                if (r[0] + r[1] > (long) c.rows * c.cols) continue;
                float[] want = new float[(int) r[1]];
                t.copyTo(r[0], want, 0, want.length);
                MemorySegment out = arena.allocate(r[1] * 4);
                K.dequantize(c.type, w, r[0], (int) r[1], out);
                float[] got = out.toArray(ValueLayout.JAVA_FLOAT);
                org.junit.jupiter.api.Assertions.assertArrayEquals(want, got, c + " values [" + r[0] + ", +" + r[1] + ")");
                checked++;
            }
        }
        assertTrue(checked > 60, checked + " ranges");
        MemorySegment small = arena.allocate(18);
        assertThrows(IllegalArgumentException.class, () -> K.dequantize(GGMLType.Q4_0, small, 16, 32, arena.allocate(128)), "past the last block");
    }

    @Test
    void thisMachineGetsItsBestInstructions() {
        String flags;
        try {
            flags = Files.readString(Path.of("/proc/cpuinfo"));
        } catch (IOException e) {
            flags = "";
        }
        if (flags.contains("avx512_vnni") && flags.contains("avx512bw")) assertEquals("avx512-vnni", K.isa());
        else if (flags.contains(" avx2")) assertEquals("avx2", K.isa());
    }

    /** Prints the instruction set the library picked (for the test below, run in a process of its own). */
    public static final class PrintIsa {
        public static void main(String[] args) {
            System.out.print(new NativeCpuKernels().isa());
        }
    }

    @Test
    void theEnvironmentCanOnlyLowerTheInstructionSet() throws Exception {
        String best = K.isa();
        assertEquals(best, isaWith(null));
        assertEquals("baseline", isaWith("baseline"));
        assertEquals(best, isaWith("no-such-set"), "an unknown name is ignored");
        if (best.equals("avx512-vnni")) assertEquals("avx2", isaWith("avx2"));
        if (best.startsWith("avx")) assertEquals(best, isaWith("neon-dotprod"), "another family's set is ignored");
        if (best.equals("avx2")) assertEquals("avx2", isaWith("avx512-vnni"), "a better set than the CPU's is ignored");
    }

    private static String isaWith(String cap) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), PrintIsa.class.getName());
        pb.environment().remove("ENCLAVE_CPU_ISA");
        if (cap != null) pb.environment().put("ENCLAVE_CPU_ISA", cap);
        pb.redirectErrorStream(false);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), new String(p.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8));
        return out.strip();
    }

    /**
     * F16 products' input conversion on every instruction set: bit for bit Java's {@code Float.floatToFloat16} (round
     * to nearest even) on ties, subnormals, the overflow edge, infinities, NaN and random bit patterns.
     */
    @Test
    void halvesRoundAsJavaDoes() {
        SplittableRandom rnd = new SplittableRandom(5);
        float[] edge = {0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, -65520f, 1e9f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.NaN, Float.MIN_VALUE, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f, 6.097555e-5f, 6.1035156e-5f,
                1.0004883f, 1.0009766f, 1.0014648f, 2049f, 2051f, -3.0517578e-5f, 1e-30f};
        int n = 4099; // past every vector width, with a tail
        float[] x = new float[2 * n];
        for (int i = 0; i < x.length; i++) {
            x[i] = i < edge.length ? edge[i] : (i & 1) == 0 ? Float.intBitsToFloat(rnd.nextInt()) : (float) rnd.nextGaussian() * 100;
        }
        MemorySegment xs = arena.allocate(x.length * 4L, 64), h = arena.allocate(NativeKernels.halfInputBytes(n, 2), 64);
        MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, x.length);
        int best = K.isaCode();
        try {
            for (int isa = 0; isa <= best; isa++) {
                if (best >= 3 && isa > 0 && isa < 3) continue;
                K.useIsa(isa);
                h.fill((byte) 0x55);
                K.toHalves(xs, n, 2, h);
                for (int i = 0; i < x.length; i++) {
                    short want = Float.floatToFloat16(x[i]), got = h.getAtIndex(ValueLayout.JAVA_SHORT, i);
                    if (Float.isNaN(x[i])) assertTrue(Float.isNaN(Float.float16ToFloat(got)), "NaN stays NaN on " + NativeCpuKernels.isaName(isa));
                    else assertEquals(want, got, x[i] + " (value " + i + ") on " + NativeCpuKernels.isaName(isa));
                    float wide = h.get(ValueLayout.JAVA_FLOAT, NativeKernels.halfInputFloats(n, 2) + 4L * i);
                    assertEquals(Float.float16ToFloat(got), wide, 0f, "value " + i + " widened back");
                }
            }
        } finally {
            K.useIsa(best);
        }
        assertThrows(IllegalArgumentException.class, () -> K.toHalves(xs, n, 3, h), "more tokens than the buffers hold");
    }

    @Test
    void outOfBoundsCallsAreRefusedBeforeTheyReachC() {
        MemorySegment w = arena.allocate(18 * 2), xq = arena.allocate(K.activationBytes(64, 1)), out = arena.allocate(8);
        assertThrows(IllegalArgumentException.class, () -> K.matmul(GGMLType.Q4_0, w, 64, 0, 2, xq, 1, out, 2), "weights of 2 rows of 64 need 72 bytes");
        assertThrows(IllegalArgumentException.class, () -> K.matmul(GGMLType.Q4_K, w, 32, 0, 1, xq, 1, out, 1));
        assertThrows(IllegalArgumentException.class, () -> K.quantize(arena.allocate(4 * 40), 40, 1, xq));
    }

    private float[] run(Case c) {
        return runSplit(c);
    }

    /** As {@link #run}, the rows multiplied in calls that end at each of {@code cuts}. */
    private float[] runSplit(Case c, int... cuts) {
        MemorySegment w = arena.allocate(c.weights.length, 64);
        MemorySegment.copy(c.weights, 0, w, ValueLayout.JAVA_BYTE, 0, c.weights.length);
        MemorySegment x = arena.allocate((long) c.x.length * 4, 64);
        MemorySegment.copy(c.x, 0, x, ValueLayout.JAVA_FLOAT, 0, c.x.length);
        MemorySegment xq;
        if (c.type == GGMLType.F16) { // F16 multiplies the activations in half precision
            xq = arena.allocate(NativeKernels.halfInputBytes(c.cols, c.tokens), 64);
            K.toHalves(x, c.cols, c.tokens, xq);
        } else {
            xq = arena.allocate(K.activationBytes(c.cols, c.tokens), 64);
            K.quantize(x, c.cols, c.tokens, xq);
        }
        lastQuantized = xq;
        MemorySegment out = arena.allocate((long) c.rows * c.tokens * 4, 64);
        // calls over parts of the rows (by default halves): the row range is what the worker threads split
        int[] at = cuts.length == 0 ? new int[] {c.rows / 2} : cuts;
        for (int i = 0, from = 0; i <= at.length; i++) {
            int to = i == at.length ? c.rows : at[i];
            K.matmul(c.type, w, c.cols, from, to, xq, c.tokens, out, c.rows);
            from = to;
        }
        float[] r = new float[c.rows * c.tokens];
        MemorySegment.copy(out, ValueLayout.JAVA_FLOAT, 0, r, 0, r.length);
        return r;
    }

    private MemorySegment lastQuantized;

    /**
     * The activations as quantized (ggml's Q8_0 rounding, checked here too) or, for F16, rounded to halves (checked bit
     * for bit against Java's rounding), times the weights as ggml decodes them.
     */
    private float[] reference(Case c) {
        int nb = c.cols / 32;
        long stride = K.activationBytes(c.cols, 1);
        MemorySegment w = arena.allocate(c.weights.length, 64);
        MemorySegment.copy(c.weights, 0, w, ValueLayout.JAVA_BYTE, 0, c.weights.length);
        FloatTensor t = FloatTensor.of(c.type, w, (long) c.rows * c.cols);
        float[] row = new float[c.cols];
        double[] xd = new double[c.tokens * c.cols];
        for (int k = 0; k < c.tokens && c.type == GGMLType.F16; k++) {
            for (int i = 0; i < c.cols; i++) {
                short h = Float.floatToFloat16(c.x[k * c.cols + i]);
                assertEquals(h, lastQuantized.getAtIndex(ValueLayout.JAVA_SHORT, (long) k * c.cols + i), "the input's half, as Java rounds it");
                long wide = NativeKernels.halfInputFloats(c.cols, c.tokens);
                assertEquals(Float.float16ToFloat(h), lastQuantized.get(ValueLayout.JAVA_FLOAT, wide + 4L * (k * c.cols + i)), "the half widened");
                xd[k * c.cols + i] = Float.float16ToFloat(h);
            }
        }
        for (int k = 0; k < c.tokens && c.type != GGMLType.F16; k++) {
            for (int b = 0; b < nb; b++) {
                float d = lastQuantized.get(ValueLayout.JAVA_FLOAT_UNALIGNED, k * stride + c.cols + 4L * b);
                int[] halves = new int[2];
                float amax = 0;
                for (int i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(c.x[k * c.cols + b * 32 + i]));
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(amax / 127f)), d, 0f, "block scale as ggml stores it");
                for (int i = 0; i < 32; i++) {
                    byte q = lastQuantized.get(ValueLayout.JAVA_BYTE, k * stride + b * 32 + i);
                    assertEquals(Math.round(c.x[k * c.cols + b * 32 + i] * (amax == 0 ? 0 : 127f / amax)), q, 1, "quantized value");
                    xd[k * c.cols + b * 32 + i] = (double) d * q;
                    halves[i / 16] += q;
                }
                for (int h = 0; h < 2; h++) {
                    assertEquals(halves[h], lastQuantized.get(ValueLayout.JAVA_SHORT_UNALIGNED, k * stride + c.cols + 8L * nb + 4L * b + 2L * h),
                            "the half block's sum");
                }
            }
        }
        float[] r = new float[c.rows * c.tokens];
        for (int i = 0; i < c.rows; i++) {
            t.copyTo((long) i * c.cols, row, 0, c.cols);
            for (int k = 0; k < c.tokens; k++) {
                double s = 0;
                for (int j = 0; j < c.cols; j++) s += row[j] * xd[k * c.cols + j];
                r[k * c.rows + i] = (float) s;
            }
        }
        return r;
    }

    /**
     * Integer sums are exact, so a quantized type's products differ from the double reference by float rounding only
     * (1e-5 of the largest); F16's are float sums of the same halves' products in another order (lanes, then across): 1e-4.
     */
    private static void compare(float[] want, float[] got, String what, GGMLType type) {
        double scale = 1e-3;
        for (float v : want) scale = Math.max(scale, Math.abs(v));
        double tolerance = (type == GGMLType.F16 ? 1e-4 : 1e-5) * scale;
        for (int i = 0; i < want.length; i++) {
            if (!(Math.abs(want[i] - got[i]) <= tolerance)) {
                fail(what + ": element " + i + " is " + got[i] + ", the reference " + want[i]);
            }
        }
    }

    /**
     * The aarch64 library (NEON, dotprod) on the same cases, run by its conformance driver under qemu-aarch64: where CI
     * installs Debian's gcc-aarch64-linux-gnu and qemu-user, this must run; elsewhere it is skipped.
     */
    @Test
    void theAarch64LibraryUnderQemu(@TempDir Path dir) throws Exception {
        Path driver = Path.of("target/native-test/linux-aarch64/conformance");
        boolean qemu = new ProcessBuilder("sh", "-c", "command -v qemu-aarch64").start().waitFor() == 0;
        if ("true".equals(System.getenv("CI"))) {
            assertTrue(Files.isExecutable(driver) && qemu, "CI must build the aarch64 library and run it under qemu-aarch64");
        }
        assumeTrue(Files.isExecutable(driver) && qemu, "no aarch64 cross build or qemu-aarch64 here");
        List<Case> cases = cases();
        Path in = dir.resolve("cases.bin"), out = dir.resolve("out.bin");
        try (DataOutputStream o = new DataOutputStream(Files.newOutputStream(in))) {
            o.write(le(cases.size()));
            for (Case c : cases) {
                for (int v : new int[] {c.type.id, c.rows, c.cols, c.tokens}) o.write(le(v));
                o.write(c.weights);
                ByteBuffer b = ByteBuffer.allocate(c.x.length * 4).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : c.x) b.putFloat(f);
                o.write(b.array());
            }
        }
        Process p = new ProcessBuilder("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", driver.toString(), in.toString(), out.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, "qemu run failed: " + log);
        ByteBuffer r = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
        int runs = 0;
        java.util.Set<String> sets = new java.util.TreeSet<>();
        for (Case c : cases) {
            run(c); // this machine's quantization of the same inputs, for the reference
            float[] want = reference(c);
            int n = r.getInt();
            for (int k = 0; k < n; k++) {
                int isa = r.getInt();
                float[] got = new float[c.rows * c.tokens];
                for (int i = 0; i < got.length; i++) got[i] = r.getFloat();
                compare(want, got, c + " on aarch64 " + NativeCpuKernels.isaName(isa), c.type);
                sets.add(NativeCpuKernels.isaName(isa));
                runs++;
            }
        }
        assertTrue(runs >= 2 * cases.size(), runs + " runs");
        // qemu-user's default CPU has the dot product and the int8 matrix multiply: both paths ran
        assertEquals(java.util.Set.of("baseline", "neon", "neon-dotprod", "neon-i8mm"), sets);
    }

    private static byte[] le(int v) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
    }
}
