package dev.enclave.runtime.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.reference.ReferenceBackend;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.kv.KvPool;
import dev.enclave.runtime.model.ActivationPrecision;
import dev.enclave.runtime.quant.Quantizer;
import dev.enclave.runtime.tensor.FloatTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every backend against the runtime's reference implementation ({@link ReferenceBackend}), as ggml's
 * {@code test-backend-ops} does: each operation, each weight type the backend claims, odd shapes and vector tails,
 * GQA ratios, sliding windows and soft caps, KV positions across block boundaries of a scattered block table, steps
 * mixing sequences. A backend must pass before it may be selected. Tolerances, relative to the RMS of the reference
 * result: exact copies (embedding rows, KV writes, gathers, adds, biases) 1e-6; norms, RoPE, activations, softmax
 * 1e-5; attention 1e-4; products with float activations 1e-4, with int8 activations (ggml's Q8_0 blocks, the CPU's
 * default) 3e-2.
 */
class BackendConformanceTest {

    private static final ReferenceBackend REF = new ReferenceBackend();

    /** One backend and the options its weights are prepared with. */
    record Subject(Backend backend, RuntimeOptions options) {
        @Override
        public String toString() {
            return backend.name() + "/" + options.activations().name().toLowerCase();
        }
    }

    static Stream<Arguments> subjects() {
        List<Arguments> all = new ArrayList<>();
        RuntimeOptions base = RuntimeOptions.defaults().withWarmup(false).withThreads(2);
        List<Backend> backends = new ArrayList<>(Backends.available(base));
        if (dev.enclave.runtime.backend.cpu.CpuBackend.shared(2).nativeKernels() != null) {
            backends.add(dev.enclave.runtime.backend.cpu.CpuBackend.sharedJava(2)); // the Java kernels stay the fallback
        }
        for (Backend b : backends) {
            for (ActivationPrecision a : ActivationPrecision.values()) {
                boolean nativeCpu = b instanceof dev.enclave.runtime.backend.cpu.CpuBackend c && c.nativeKernels() != null;
                if (nativeCpu && a == ActivationPrecision.FLOAT) continue; // float activations run the Java kernels
                all.add(Arguments.of(new Subject(b, base.withActivations(a))));
            }
        }
        return all.stream();
    }

    private static final GGMLType[] TYPES = {GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0,
            GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K,
            GGMLType.Q6_K, GGMLType.IQ4_NL};

    private final Arena arena = Arena.ofAuto();

    @ParameterizedTest(name = "{0}")
    @MethodSource("subjects")
    void matmulOnEveryTypeAndShape(Subject s) {
        SplittableRandom rnd = new SplittableRandom(11);
        int checked = 0;
        for (GGMLType type : TYPES) {
            if (!s.backend.supportsOp(Op.MATMUL, type)) continue;
            int block = type.blockSize;
            // rows: a row group and a ragged tail, odd, one; columns: one block, several, a K-quant superblock's multiple
            int[][] shapes = {{64, Math.max(256, block)}, {37, 2 * Math.max(256, block)}, {96, 3 * Math.max(256, block)}, {1, Math.max(256, block)}};
            for (int[] shape : shapes) {
                int rows = shape[0], cols = shape[1];
                FloatTensor raw = randomTensor(type, rows, cols, rnd);
                try (WeightPreparer mine = s.backend.weights(null, null, s.options)) {
                    Weight w = mine.prepare("blk.0.ffn_up.weight", raw, rows, cols);
                    for (int tokens : new int[] {1, 2, 3, 4, 5, 17}) {
                        float[] x = gaussian(rnd, tokens * (cols + 3));
                        float[] want = runMatmul(REF, raw, x, rows, cols, tokens);
                        float[] got = runMatmul(s.backend, w, x, rows, cols, tokens);
                        boolean floatRoute = s.options.activations() == ActivationPrecision.FLOAT
                                || type == GGMLType.F32 || type == GGMLType.BF16;
                        // F16 with ggml's activations: the input may be rounded to halves, as ggml's F16 product does
                        boolean halves = type == GGMLType.F16 && !floatRoute;
                        assertClose(want, got, floatRoute ? 1e-4 : halves ? 1e-3 : 3e-2, s + " matmul " + type + " " + rows + "x" + cols + ", " + tokens + " tokens");
                        checked++;
                    }
                }
            }
        }
        assertTrue(checked >= 4 * 6, "the backend claims too few weight types to be useful: " + checked + " cases");
    }

    /**
     * Products sharing one input (q, k, v; gate, up): the same values as one {@link Backend#matmul} each (the same
     * kernels on the same quantized input), for mixed types, a float-input type among quantized ones, and row counts
     * that are not multiples of a row group. To a few units in the last place, not bit for bit: the Vector API sums a
     * vector's lanes in another order in the interpreter than in compiled code, and one of the two calls may run
     * before the JIT has compiled the kernel.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("subjects")
    void sharedInputProductsEqualSeparateOnes(Subject s) {
        SplittableRandom rnd = new SplittableRandom(12);
        GGMLType[][] sets = {{GGMLType.Q4_0, GGMLType.Q4_0, GGMLType.Q4_0}, {GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q6_K},
                {GGMLType.Q8_0, GGMLType.F16}, {GGMLType.F16, GGMLType.F16}, {GGMLType.Q4_0, GGMLType.Q5_0}};
        int[][] rowSets = {{64, 32, 32}, {48, 16, 37}, {64, 64}, {33, 64}, {64, 16}};
        int cols = 512;
        int checked = 0;
        for (int k = 0; k < sets.length; k++) {
            GGMLType[] types = sets[k];
            boolean all = true;
            for (GGMLType t : types) all &= s.backend.supportsOp(Op.MATMUL, t);
            if (!all) continue;
            try (WeightPreparer mine = s.backend.weights(null, null, s.options)) {
                Weight[] ws = new Weight[types.length];
                int[] rows = rowSets[k];
                for (int i = 0; i < types.length; i++) ws[i] = mine.prepare("blk.0.attn_q.weight", randomTensor(types[i], rows[i], cols, rnd), rows[i], cols);
                for (int tokens : new int[] {1, 5}) {
                    int xStride = cols + 7;
                    float[] x = gaussian(rnd, tokens * xStride);
                    DeviceBuffer in = s.backend.allocate(x.length + 3);
                    s.backend.upload(x, 0, in, 3, x.length);
                    DeviceBuffer[] outs = new DeviceBuffer[types.length];
                    for (int i = 0; i < types.length; i++) outs[i] = s.backend.allocate(rows[i] * tokens);
                    s.backend.matmulShared(ws, rows, in, 3, xStride, outs, cols, tokens);
                    for (int i = 0; i < types.length; i++) {
                        DeviceBuffer one = s.backend.allocate(rows[i] * tokens);
                        s.backend.matmul(ws[i], in, 3, xStride, one, 0, rows[i], rows[i], cols, tokens);
                        float[] want = new float[rows[i] * tokens], got = new float[want.length];
                        s.backend.download(one, 0, want, 0, want.length);
                        s.backend.download(outs[i], 0, got, 0, got.length);
                        assertClose(want, got, 1e-6, s + " shared product " + i + " of " + java.util.Arrays.toString(types) + ", " + tokens + " tokens");
                        checked++;
                    }
                }
            }
        }
        assertTrue(checked >= 8, checked + " products");
    }

    /** Inputs at an offset and a stride wider than a row: the layout the forward pass uses for fused projections. */
    private static float[] runMatmul(Backend b, Weight w, float[] x, int rows, int cols, int tokens) {
        int xStride = cols + 3, outStride = rows + 5;
        DeviceBuffer in = b.allocate(x.length + 2);
        b.upload(x, 0, in, 2, x.length - 2);
        DeviceBuffer out = b.allocate(tokens * outStride + 1);
        b.matmul(w, in, 2, xStride, out, 1, outStride, rows, cols, tokens);
        float[] host = new float[tokens * outStride + 1];
        b.download(out, 0, host, 0, host.length);
        float[] r = new float[tokens * rows];
        for (int t = 0; t < tokens; t++) System.arraycopy(host, 1 + t * outStride, r, t * rows, rows);
        return r;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("subjects")
    void elementwiseOperations(Subject s) {
        Backend b = s.backend;
        SplittableRandom rnd = new SplittableRandom(5);
        for (int n : new int[] {1, 7, 16, 67, 288}) {
            for (int tokens : new int[] {1, 3, 8}) {
                int stride = n + 5;
                float[] x = gaussian(rnd, tokens * stride);
                float[] y = gaussian(rnd, tokens * stride);
                FloatTensor norm = f32(gaussian(rnd, n));
                Weight wNorm;
                try (WeightPreparer p = b.weights(null, null, s.options)) {
                    wNorm = p.prepare("blk.0.attn_norm.weight", norm, 1, n);
                    // rmsnorm, in place and into another buffer, 1 or 2 heads per row
                    for (int heads : new int[] {1, 2}) {
                        int len = n * heads <= stride ? n : 0;
                        if (heads == 2) {
                            if (2 * n > stride) continue;
                            len = n;
                        }
                        final int hn = len;
                        Weight wn = heads == 1 ? wNorm : p.prepare("blk.0.attn_q_norm.weight", norm, 1, n);
                        compare(s, "rmsnorm heads " + heads + " n " + n, x, tokens * stride,
                                (be, buf) -> be.rmsnorm(buf, 0, stride, buf, 0, stride, be == REF ? norm : wn, tokens, heads, hn, 1e-5f), 1e-5);
                    }
                    FloatTensor bias = f32(gaussian(rnd, n));
                    Weight wBias = p.prepare("blk.0.attn_q.bias", bias, 1, n);
                    compare(s, "addBias n " + n, x, tokens * stride, (be, buf) -> be.addBias(buf, 2, stride, be == REF ? bias : wBias, n - 2 > 0 ? n - 2 : 1, tokens), 1e-6);
                }
                for (boolean gelu : new boolean[] {false, true}) {
                    compare(s, (gelu ? "gelu" : "silu") + " n " + n, concat(x, y), 2 * tokens * stride, (be, buf) ->
                            be.gatedActivation(buf, 0, stride, buf, tokens * stride, stride, n, tokens, gelu), 1e-5);
                }
                compare(s, "add n " + n, concat(x, y), 2 * tokens * stride, (be, buf) -> be.add(buf, 0, stride, buf, tokens * stride, stride, n, tokens), 1e-6);
                compare(s, "softmax n " + n, x, tokens * stride, (be, buf) -> be.softmax(buf, 1, stride, n, tokens), 1e-5);
                int[] rows = {tokens - 1, 0};
                float[] gathered = new float[2 * n];
                compare(s, "gatherRows n " + n, concat(x, gathered), tokens * stride + 2 * n, (be, buf) -> {
                    DeviceBuffer dst = be.allocate(2 * n);
                    be.gatherRows(buf, stride, rows, 2, dst, n, n);
                    float[] h = new float[2 * n];
                    be.download(dst, 0, h, 0, 2 * n);
                    be.upload(h, 0, buf, tokens * stride, 2 * n);
                }, 1e-6);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("subjects")
    void embeddingRowsOfEveryType(Subject s) {
        SplittableRandom rnd = new SplittableRandom(3);
        for (GGMLType type : TYPES) {
            if (!s.backend.supportsOp(Op.EMBED, type)) continue;
            int vocab = 64, dim = Math.max(256, type.blockSize);
            FloatTensor raw = randomTensor(type, vocab, dim, rnd);
            try (WeightPreparer p = s.backend.weights(null, null, s.options)) {
                Weight w = p.prepare("token_embd.weight", raw, vocab, dim);
                StepBatch step = new StepBatch(4, 1);
                step.tokens = 4;
                int[] ids = {0, 63, 17, 17};
                System.arraycopy(ids, 0, step.token, 0, 4);
                float[] want = embed(REF, raw, step, dim), got = embed(s.backend, w, step, dim);
                assertClose(want, got, 1e-6, s + " embed " + type);
            }
        }
    }

    private static float[] embed(Backend b, Weight w, StepBatch step, int dim) {
        DeviceBuffer out = b.allocate(step.tokens * (dim + 1));
        b.embed(w, step, out, dim + 1, dim, 1.5f);
        float[] h = new float[step.tokens * (dim + 1)];
        b.download(out, 0, h, 0, h.length);
        return h;
    }

    /**
     * RoPE (normal and NEOX, partial rotary dimensions), the KV write and attention for steps mixing two sequences whose
     * block tables interleave, so that positions cross block boundaries into blocks that are not adjacent.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("subjects")
    void ropeKvWriteAndAttentionOverThePagedCache(Subject s) {
        SplittableRandom rnd = new SplittableRandom(9);
        int[][] shapes = {{1, 1, 8}, {4, 2, 16}, {8, 2, 64}, {6, 2, 80}, {3, 3, 48}, {8, 1, 128}};
        for (int[] shape : shapes) {
            int heads = shape[0], kvHeads = shape[1], headDim = shape[2];
            for (int window : new int[] {0, 5}) {
                for (float cap : new float[] {0f, 20f}) {
                    attentionCase(s, rnd, heads, kvHeads, headDim, window, cap, KvType.F32);
                }
            }
        }
    }

    /**
     * The same over every KV cache type: both backends store the same bytes (one encoder), so what is compared is
     * attention on the compressed rows (decoded a tile at a time on the CPU, rotated queries) against the reference's
     * decode-everything loop; 70 positions cross the CPU's 64-position tiles.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("subjects")
    void attentionOverEveryKvCacheType(Subject s) {
        SplittableRandom rnd = new SplittableRandom(10);
        int[][] shapes = {{1, 1, 8}, {4, 2, 16}, {8, 2, 64}, {6, 2, 80}, {8, 1, 128}};
        for (String type : new String[] {"f16", "q8", "q4", "q8r", "q4r", "q8/q4", "q8r/q4r", "f16/q4r", "q3r/q2r", "q8/q3", "q2/q2r", "q3jr/q3r", "q4j/q8",
                "q4r+3", "q2/q2r+5", "q8+1"}) {
            KvType t = KvType.parse(type);
            for (int[] shape : shapes) {
                boolean sketched = t.keys().sketch || t.values().sketch;
                if ((t.rotateKeys() || t.rotateValues() || sketched) && Integer.bitCount(shape[2]) != 1) continue;
                attentionCase(s, rnd, shape[0], shape[1], shape[2], 0, 0f, t);
                attentionCase(s, rnd, shape[0], shape[1], shape[2], 5, 20f, t);
            }
        }
    }

    /**
     * A transform-coded cache: keys are stored before RoPE (the write turns them back by their position) and attention
     * turns them again; values are read as coefficients and their weighted sum turned back once per head. Every
     * backend must read what the reference reads.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("subjects")
    void attentionOverATransformCodedCache(Subject s) {
        SplittableRandom rnd = new SplittableRandom(12);
        for (int[] shape : new int[][] {{1, 1, 8}, {4, 2, 16}, {8, 2, 64}, {6, 2, 80}}) {
            int kvHeads = shape[1], headDim = shape[2];
            float[] invFreq = new float[headDim / 4];
            for (int i = 0; i < invFreq.length; i++) invFreq[i] = (float) Math.pow(10000, -2.0 * i / (2 * invFreq.length));
            KvTransformCode[] k = new KvTransformCode[kvHeads], v = new KvTransformCode[kvHeads];
            for (int h = 0; h < kvHeads; h++) {
                k[h] = KvTransformCodeTest.random(headDim, rnd);
                v[h] = KvTransformCodeTest.random(headDim, rnd);
            }
            KvCode code = new KvCode(headDim, new KvTransformCode[][] {k}, new KvTransformCode[][] {v}, new float[][] {invFreq},
                    (headDim & 16) != 0, "conformance");
            attentionCase(s, rnd, shape[0], kvHeads, headDim, 0, 0f, KvType.coded(code.layer(0)));
            attentionCase(s, rnd, shape[0], kvHeads, headDim, 5, 20f, KvType.coded(code.layer(0)));
            attentionCase(s, rnd, shape[0], kvHeads, headDim, 0, 0f, KvType.coded(code.layer(0)).withWindow(4));
        }
    }

    private static void attentionCase(Subject s, SplittableRandom rnd, int heads, int kvHeads, int headDim, int window, float cap,
                                      KvType type) {
        int kvDim = kvHeads * headDim, qDim = heads * headDim;
        int blockSize = 4, blocks = 32;
        String what = s + " attention heads " + heads + "/" + kvHeads + " dim " + headDim + " window " + window + " cap " + cap
                + " kv " + type;
        // two sequences grown alternately: their blocks interleave in the pool
        int lenA = 70, lenB = 6;
        Backend[] both = {REF, s.backend};
        float[][] outputs = new float[2][];
        float[][] keysBack = new float[2][];
        for (int k = 0; k < 2; k++) {
            Backend b = both[k];
            KvPool pool = new KvPool(List.of(b.allocateKv(kvDim, headDim, blocks * blockSize, type)), kvDim, blockSize, blocks);
            BlockTable ta = new BlockTable(pool), tb = new BlockTable(pool);
            for (int p = blockSize; p < lenA + blockSize; p += blockSize) {
                assertTrue(ta.ensure(Math.min(p, lenA)));
                assertTrue(tb.ensure(Math.min(p, lenB)));
            }
            // fill every position by steps of the KV write: all of A's, then all of B's
            SplittableRandom data = new SplittableRandom(headDim * 31L + heads);
            float[] invFreq = new float[headDim / 4]; // half the head rotates (partial rotary dimensions)
            for (int i = 0; i < invFreq.length; i++) invFreq[i] = (float) Math.pow(10000, -2.0 * i / (2 * invFreq.length));
            for (BlockTable t : new BlockTable[] {ta, tb}) {
                int len = t == ta ? lenA : lenB;
                StepBatch step = new StepBatch(len, 1);
                step.tokens = len;
                step.sequences = 1;
                step.tables[0] = t;
                for (int p = 0; p < len; p++) {
                    step.pos[p] = p;
                    step.slot[p] = t.slot(p);
                }
                DeviceBuffer kb = b.allocate(len * kvDim), vb = b.allocate(len * kvDim);
                b.upload(gaussian(data, len * kvDim), 0, kb, 0, len * kvDim);
                b.upload(gaussian(data, len * kvDim), 0, vb, 0, len * kvDim);
                if (type.equals(KvType.F32)) { // (with a compressed type both write the same floats: the same bytes)
                    b.rope(kb, 0, kvDim, kvHeads, headDim, step, invFreq, (headDim & 16) != 0);
                }
                b.kvWrite(pool.layer(0), kb, 0, kvDim, vb, 0, kvDim, kvDim, step);
            }
            // the step: A's last three positions and B's last one
            StepBatch step = new StepBatch(4, 2);
            step.tokens = 4;
            step.sequences = 2;
            step.tables[0] = ta;
            step.tables[1] = tb;
            int[] seq = {0, 0, 0, 1}, pos = {lenA - 3, lenA - 2, lenA - 1, lenB - 1};
            for (int j = 0; j < 4; j++) {
                step.sequence[j] = seq[j];
                step.pos[j] = pos[j];
                step.slot[j] = (seq[j] == 0 ? ta : tb).slot(pos[j]);
            }
            int qStride = qDim + 3, outStride = qDim + 1;
            DeviceBuffer q = b.allocate(4 * qStride), out = b.allocate(4 * outStride);
            b.upload(gaussian(new SplittableRandom(77), 4 * qStride), 0, q, 0, 4 * qStride);
            b.rope(q, 1, qStride, heads, headDim, step, invFreq, (headDim & 16) != 0);
            b.attention(pool.layer(0), q, 1, qStride, out, 0, outStride, step, heads, kvHeads, headDim,
                    (float) (1 / Math.sqrt(headDim)), cap, window);
            outputs[k] = new float[4 * outStride];
            b.download(out, 0, outputs[k], 0, outputs[k].length);
            keysBack[k] = new float[lenA * kvDim];
            float[] key = new float[kvDim], value = new float[kvDim];
            for (int p = 0; p < lenA; p++) {
                pool.layer(0).readSlot(ta.slot(p), key, value);
                System.arraycopy(key, 0, keysBack[k], p * kvDim, kvDim);
            }
        }
        assertClose(keysBack[0], keysBack[1], 1e-5, what + ": keys after RoPE and the KV write");
        assertClose(outputs[0], outputs[1], 1e-4, what);
    }

    // ---- helpers ----

    interface Op2 {
        void run(Backend b, DeviceBuffer buf);
    }

    /** Runs {@code op} on the reference and on the subject over the same input; compares the whole buffer. */
    private static void compare(Subject s, String what, float[] input, int n, Op2 op, double tol) {
        float[][] r = new float[2][];
        Backend[] both = {REF, s.backend};
        for (int k = 0; k < 2; k++) {
            DeviceBuffer buf = both[k].allocate(n);
            both[k].upload(input, 0, buf, 0, n);
            op.run(both[k], buf);
            r[k] = new float[n];
            both[k].download(buf, 0, r[k], 0, n);
        }
        assertClose(r[0], r[1], tol, s + " " + what);
    }

    static void assertClose(float[] want, float[] got, double relTol, String what) {
        assertEquals(want.length, got.length, what + ": lengths");
        double ss = 0;
        for (float v : want) ss += (double) v * v;
        double rms = Math.sqrt(ss / Math.max(1, want.length));
        double tol = relTol * Math.max(rms, 1e-3);
        for (int i = 0; i < want.length; i++) {
            if (!(Math.abs(want[i] - got[i]) <= tol)) {
                fail(what + ": element " + i + " is " + got[i] + ", the reference " + want[i] + " (tolerance " + tol + ")");
            }
        }
    }

    private static float[] concat(float[] a, float[] b) {
        float[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    static float[] gaussian(SplittableRandom rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextDouble(-1, 1) + rnd.nextDouble(-1, 1));
        return x;
    }

    private FloatTensor f32(float[] v) {
        return tensorOf(GGMLType.F32, Quantizer.quantize(GGMLType.F32, v, v.length), v.length);
    }

    /** Where each type's block keeps its float16 scales: set to small values, every other byte random. */
    private static int[] halfOffsets(GGMLType t) {
        return switch (t) {
            case Q4_1, Q5_K -> new int[] {0, 2};
            case Q5_1 -> new int[] {0, 2};
            case Q5_0, IQ4_NL -> new int[] {0};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            default -> throw new IllegalArgumentException(t.toString());
        };
    }

    private FloatTensor randomTensor(GGMLType type, int rows, int cols, SplittableRandom rnd) {
        int n = rows * cols;
        byte[] bytes;
        if (Quantizer.supports(type)) {
            bytes = Quantizer.quantize(type, gaussian(rnd, n), n);
        } else if (type == GGMLType.BF16) {
            bytes = new byte[2 * n];
            for (int i = 0; i < n; i++) {
                int bits = Float.floatToIntBits((float) rnd.nextDouble(-1, 1)) >>> 16;
                bytes[2 * i] = (byte) bits;
                bytes[2 * i + 1] = (byte) (bits >>> 8);
            }
        } else {
            bytes = new byte[(int) type.byteSize(n)];
            rnd.nextBytes(bytes);
            int blockBytes = (int) type.byteSize(type.blockSize);
            for (int b = 0; b < bytes.length; b += blockBytes) {
                for (int off : halfOffsets(type)) {
                    short h = Float.floatToFloat16((float) rnd.nextDouble(0.001, 0.02));
                    bytes[b + off] = (byte) h;
                    bytes[b + off + 1] = (byte) (h >> 8);
                }
            }
        }
        return tensorOf(type, bytes, n);
    }

    private FloatTensor tensorOf(GGMLType type, byte[] bytes, long n) {
        MemorySegment seg = arena.allocate(bytes.length, 64);
        MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
        return FloatTensor.of(type, seg, n);
    }
}
