package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.HostBackend;
import dev.enclave.runtime.backend.DeviceBuffer;
import dev.enclave.runtime.backend.HostBuffer;
import dev.enclave.runtime.backend.HostKvStorage;
import dev.enclave.runtime.backend.KvRows;
import dev.enclave.runtime.backend.KvStorage;
import dev.enclave.runtime.backend.Op;
import dev.enclave.runtime.backend.StepBatch;
import dev.enclave.runtime.backend.Weight;
import dev.enclave.runtime.backend.WeightPreparer;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.kv.KvPool;
import dev.enclave.runtime.tensor.VectorMath;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tensor.RowGroupTensor;
import dev.enclave.runtime.tensor.Q8Activations;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The CPU: weights stay in the memory-mapped file or are repacked at load ({@link CpuWeights}), activations and
 * the KV pool are heap arrays. The per-type dot products (Vector API) live in the tensor classes; this backend splits
 * matrix rows statically across a {@link WorkerPool}, attention by (token, KV head). Small products stay on the
 * calling thread, where handing off would cost more than it saves.
 */
public final class CpuBackend extends HostBackend {

    /** One backend per thread count and kernel kind, shared by the models of a process (their products take turns). */
    private static final ConcurrentHashMap<Integer, CpuBackend> SHARED = new ConcurrentHashMap<>();
    private static final ConcurrentHashMap<Integer, CpuBackend> SHARED_JAVA = new ConcurrentHashMap<>();
    /** The native library's kernels, loaded once per process; null where there is none for this CPU. */
    private static volatile NativeKernels loadedNatives;
    private static volatile boolean nativesLooked;
    /** Below this many multiply-adds a matmul stays on one thread. */
    private static final long PARALLEL_THRESHOLD = 1L << 15;

    private final WorkerPool pool;
    private final MatmulJob matmul = new MatmulJob();
    private final BatchMatmul batch;
    private final GroupMatmul groups = new GroupMatmul();
    private final QuantizeJob quantize = new QuantizeJob();

    private final NativeKernels natives;
    private final boolean javaOnly;

    /** The CPU with the native kernels where a library exists for it. */
    public CpuBackend(int threads) {
        this(threads, false);
    }

    /** {@code javaOnly}: the Java (Vector API) kernels only, named "cpu-java" (the fallback, and the reference). */
    public CpuBackend(int threads, boolean javaOnly) {
        this.pool = new WorkerPool(threads);
        this.batch = new BatchMatmul(threads);
        this.javaOnly = javaOnly;
        this.natives = javaOnly ? null : natives();
    }

    /**
     * Loads the native library and links its downcalls now (a few tens of milliseconds, most of it the linker
     * generating code), so a model about to be loaded does not wait for it; idempotent.
     */
    public static void preloadNativeKernels() {
        natives();
    }

    private static NativeKernels natives() {
        if (!nativesLooked) {
            synchronized (CpuBackend.class) {
                if (!nativesLooked) {
                    try {
                        loadedNatives = NativeKernels.load();
                    } catch (RuntimeException | LinkageError e) {
                        System.getLogger(CpuBackend.class.getName()).log(System.Logger.Level.WARNING,
                                "the native CPU kernels could not be loaded ({0}); the Java kernels run", e.toString());
                    }
                    nativesLooked = true;
                }
            }
        }
        return loadedNatives;
    }

    /** The process's backend with {@code threads} workers (made on first use, never closed). */
    public static CpuBackend shared(int threads) {
        return SHARED.computeIfAbsent(Math.max(1, threads), CpuBackend::new);
    }

    /** The process's Java-only backend with {@code threads} workers. */
    public static CpuBackend sharedJava(int threads) {
        return SHARED_JAVA.computeIfAbsent(Math.max(1, threads), t -> new CpuBackend(t, true));
    }

    /** The native kernels this backend uses, or null. */
    public NativeKernels nativeKernels() {
        return natives;
    }

    /** Whether the native kernels multiply this tensor (as it is stored in the file: those are not repacked). */
    boolean runsNatively(FloatTensor w) {
        return natives != null && (w instanceof NativeRepackedTensor || !(w instanceof RowGroupTensor) && natives.supports(w.type()));
    }

    /** The process's backend with one worker per processor. */
    public static CpuBackend instance() {
        return shared(Runtime.getRuntime().availableProcessors());
    }

    public int threads() {
        return pool.threads();
    }

    public WorkerPool pool() {
        return pool;
    }

    @Override
    public String name() {
        return javaOnly ? "cpu-java" : "cpu";
    }

    @Override
    public boolean isAvailable() {
        return true;
    }

    /** One input vector: {@code out[outOff + r] = dot(w row r, x[xOff ..])}. */
    public void matmul(FloatTensor w, float[] x, int xOff, float[] out, int outOff, int rows, int cols) {
        if (w instanceof RowGroupTensor q) {
            grouped(q, x, xOff, cols, out, outOff, 0, rows, cols, 1);
            return;
        }
        if ((long) rows * cols < PARALLEL_THRESHOLD || pool.threads() == 1) {
            rowRange(w, x, xOff, out, outOff, cols, 0, rows);
            return;
        }
        synchronized (matmul) {
            matmul.set(w, x, xOff, out, outOff, cols);
            pool.run(rows, matmul);
            matmul.set(null, null, 0, null, 0, 0);
        }
    }

    /** Several input vectors {@code x[xOff + t * xStride ..]}: each weight row is read once for all of them. */
    public void matmulBatch(FloatTensor w, float[] x, int xOff, int xStride, float[] out, int outOff, int outStride, int rows, int cols, int tokens) {
        if (w instanceof RowGroupTensor q) {
            grouped(q, x, xOff, xStride, out, outOff, outStride, rows, cols, tokens);
            return;
        }
        synchronized (batch) {
            batch.set(w, x, xOff, xStride, out, outOff, outStride, rows, cols, tokens);
            pool.run(batch.groups(), batch);
            batch.set(null, null, 0, 0, null, 0, 0, 0, 0, 0);
        }
    }

    /** Integer route: the inputs are quantized once (ggml's Q8_0 blocks), then row groups are split across threads. */
    private void grouped(RowGroupTensor w, float[] x, int xOff, int xStride, float[] out, int outOff, int outStride, int rows, int cols, int tokens) {
        if (rows != w.rows() || cols != w.cols()) throw new IllegalArgumentException("matmul shape " + rows + "x" + cols + " on a " + w.rows() + "x" + w.cols() + " tensor");
        synchronized (groups) {
            if (tokens >= PARALLEL_QUANTIZE_TOKENS && pool.threads() > 1) {
                groups.acts.prepare(cols, tokens);
                quantize.set(groups.acts, x, xOff, xStride);
                pool.run(tokens, quantize);
                quantize.set(null, null, 0, 0);
            } else {
                groups.acts.quantize(x, xOff, xStride, cols, tokens);
            }
            groups.set(w, out, outOff, outStride);
            if ((long) rows * cols * tokens < PARALLEL_THRESHOLD) groups.run(0, w.groups());
            else pool.run(w.groups(), groups);
            groups.set(null, null, 0, 0);
        }
    }

    /** From this many tokens, the activations are quantized on all threads (3% of a 128-token prefill on one). */
    static final int PARALLEL_QUANTIZE_TOKENS = 16;

    /** The reusable job that quantizes a batch's activations, a range of tokens per thread. */
    private static final class QuantizeJob implements WorkerPool.Job {
        Q8Activations acts;
        float[] x;
        int xOff;
        int xStride;

        void set(Q8Activations acts, float[] x, int xOff, int xStride) {
            this.acts = acts;
            this.x = x;
            this.xOff = xOff;
            this.xStride = xStride;
        }

        @Override
        public void run(int from, int to) {
            acts.quantizeTokens(x, xOff, xStride, from, to);
        }
    }

    /**
     * The reusable job for tensors repacked in row groups: one token over all its groups; several tokens group by
     * group, four at a time, so a group's weights (tens of KB) come from memory once and stay in cache for the rest.
     */
    private static final class GroupMatmul implements WorkerPool.Job {
        final Q8Activations acts = new Q8Activations();
        RowGroupTensor w;
        float[] out;
        int outOff;
        int outStride;

        void set(RowGroupTensor w, float[] out, int outOff, int outStride) {
            this.w = w;
            this.out = out;
            this.outOff = outOff;
            this.outStride = outStride;
        }

        @Override
        public void run(int from, int to) {
            int tokens = acts.tokens();
            if (tokens == 1) {
                w.multiply(acts, 0, from, to, out, outOff);
                return;
            }
            // until the warm-up has compiled the four-token kernel, the one-token kernel (same results, bit for bit)
            int fours = dev.enclave.runtime.tensor.KernelWarmup.batchKernelsWarming() ? 0 : tokens / 4 * 4;
            for (int g = from; g < to; g++) {
                int t = 0;
                for (; t < fours; t += 4) w.multiply4(acts, t, g, g + 1, out, outOff + t * outStride, outStride);
                for (; t < tokens; t++) w.multiply(acts, t, g, g + 1, out, outOff + t * outStride);
            }
        }
    }

    static void rowRange(FloatTensor w, float[] x, int xOff, float[] out, int outOff, int cols, int from, int to) {
        for (int r = from; r < to; r++) {
            out[outOff + r] = w.dot((long) r * cols, x, xOff, cols);
        }
    }

    /** The one reusable matmul job: arguments are fields, so a call allocates nothing. */
    private static final class MatmulJob implements WorkerPool.Job {
        FloatTensor w;
        float[] x;
        int xOff;
        float[] out;
        int outOff;
        int cols;

        void set(FloatTensor w, float[] x, int xOff, float[] out, int outOff, int cols) {
            this.w = w;
            this.x = x;
            this.xOff = xOff;
            this.out = out;
            this.outOff = outOff;
            this.cols = cols;
        }

        @Override
        public void run(int from, int to) {
            rowRange(w, x, xOff, out, outOff, cols, from, to);
        }
    }

    /** Runs {@code job} over [0, size), split across the worker threads. */
    public void parallel(int size, dev.enclave.runtime.backend.RangeJob job) {
        pool.run(size, job);
    }

    static void rmsnorm(float[] out, int outOff, float[] x, int xOff, FloatTensor weight, int n, float eps) {
        // ggml accumulates the sum of squares in double; so do we, for parity on long rows.
        double ss = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            ss += (double) v * v;
        }
        float scale = (float) (1.0 / Math.sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) {
            out[outOff + i] = weight.getFloat(i) * (scale * x[xOff + i]);
        }
    }

    static void softmax(float[] x, int off, int n) {
        float max = VectorMath.max(x, off, n);
        double sum = VectorMath.expShifted(x, off, x, off, n, max, 1f);
        VectorMath.scale(x, off, n, (float) (1.0 / sum));
    }

    // ---- the native kernels ----

    /** The repacking of a matrix for the native kernels, its row groups split across the workers. */
    void nativeRepack(FloatTensor w, int rows, int cols, java.lang.foreign.MemorySegment dst) {
        dev.enclave.runtime.backend.RangeJob job = (from, to) -> natives.repack(w.type(), w.data(), cols, from, to, dst);
        pool.run(rows / NativeKernels.GROUP, job);
    }

    private final NativeJob nativeJob = new NativeJob();

    /**
     * The product through the native library: the inputs are copied to native memory and quantized once, then the
     * rows are split across the workers, each calling the library for its range; the outputs are copied back.
     * Buffers grow when a product needs more and are reused otherwise: no allocation per step.
     */
    private void nativeMatmul(FloatTensor w, float[] x, int xOff, int xStride, float[] out, int outOff, int outStride,
                              int rows, int cols, int tokens) {
        synchronized (nativeJob) {
            NativeJob j = nativeJob;
            j.input(natives, x, xOff, xStride, cols, tokens, NativeKernels.takesHalves(w.type()));
            j.add(0, w, rows);
            j.runAll((long) rows * cols * tokens);
            for (int t = 0; t < tokens; t++) {
                MemorySegment.copy(j.out[0], ValueLayout.JAVA_FLOAT, (long) t * rows * Float.BYTES, out, outOff + t * outStride, rows);
            }
        }
    }

    /** Whether these shared-input products all run natively on one kind of input (quantized, or F16's halves). */
    private boolean sharedNatively(Weight[] ws) {
        if (natives == null || ws.length > NativeJob.MAX) return false;
        boolean halves = NativeKernels.takesHalves(((FloatTensor) ws[0]).type());
        for (Weight w : ws) {
            FloatTensor t = (FloatTensor) w;
            if (!runsNatively(t) || NativeKernels.takesHalves(t.type()) != halves) return false;
        }
        return true;
    }

    /**
     * q, k and v (or gate and up) natively: the input quantized once, and the three products one job across the
     * workers (one wait instead of three).
     */
    @Override
    public void matmulShared(Weight[] ws, int[] rows, DeviceBuffer x, int xOff, int xStride, DeviceBuffer[] out, int cols, int tokens) {
        if (!sharedNatively(ws)) {
            super.matmulShared(ws, rows, x, xOff, xStride, out, cols, tokens);
            return;
        }
        synchronized (nativeJob) {
            NativeJob j = nativeJob;
            j.input(natives, HostBuffer.of(x), xOff, xStride, cols, tokens, NativeKernels.takesHalves(((FloatTensor) ws[0]).type()));
            long work = 0;
            for (int i = 0; i < ws.length; i++) {
                j.add(i, (FloatTensor) ws[i], rows[i]);
                work += (long) rows[i] * cols * tokens;
            }
            j.runAll(work);
            for (int i = 0; i < ws.length; i++) {
                MemorySegment.copy(j.out[i], ValueLayout.JAVA_FLOAT, 0, HostBuffer.of(out[i]), 0, rows[i] * tokens);
            }
        }
    }

    /** The reusable native product job (up to {@link #MAX} matrices on one input) and its native buffers. */
    private final class NativeJob implements WorkerPool.Job {
        static final int MAX = 4;
        MemorySegment x = MemorySegment.NULL, xq = MemorySegment.NULL;
        /** Per matrix, its outputs: token t's row at t * rows. */
        final MemorySegment[] out = {MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL};
        final FloatTensor[] w = new FloatTensor[MAX];
        final int[] rows = new int[MAX];
        /** Matrix i's work units (row groups or rows) are [unitEnd[i - 1], unitEnd[i]) of the job's index space. */
        final int[] unitEnd = new int[MAX];
        int count, cols, tokens;

        /** Copies the input to native memory and quantizes it, or rounds it to halves for F16's products. */
        void input(NativeKernels k, float[] src, int off, int stride, int cols, int tokens, boolean halves) {
            long xBytes = (long) cols * tokens * Float.BYTES;
            long qBytes = halves ? NativeKernels.halfInputBytes(cols, tokens) : k.activationBytes(cols, tokens);
            if (x.byteSize() < xBytes) x = Arena.ofAuto().allocate(xBytes, 64);
            if (xq.byteSize() < qBytes) xq = Arena.ofAuto().allocate(qBytes, 64);
            for (int t = 0; t < tokens; t++) {
                MemorySegment.copy(src, off + t * stride, x, ValueLayout.JAVA_FLOAT, (long) t * cols * Float.BYTES, cols);
            }
            if (halves) k.toHalves(x, cols, tokens, xq);
            else k.quantize(x, cols, tokens, xq);
            this.cols = cols;
            this.tokens = tokens;
            this.count = 0;
        }

        void add(int i, FloatTensor w, int rows) {
            long oBytes = (long) rows * tokens * Float.BYTES;
            if (out[i].byteSize() < oBytes) out[i] = Arena.ofAuto().allocate(oBytes, 64);
            this.w[i] = w;
            this.rows[i] = rows;
            int units = w instanceof NativeRepackedTensor ? rows / NativeKernels.GROUP : rows;
            unitEnd[i] = (i == 0 ? 0 : unitEnd[i - 1]) + units;
            count = i + 1;
        }

        /** Runs every added product, across the workers when there is enough {@code work} (multiply-adds). */
        void runAll(long work) {
            int units = unitEnd[count - 1];
            if (work < PARALLEL_THRESHOLD || pool.threads() == 1) run(0, units);
            else pool.run(units, this);
            for (int i = 0; i < count; i++) w[i] = null;
        }

        @Override
        public void run(int from, int to) {
            for (int i = 0; i < count; i++) {
                int start = i == 0 ? 0 : unitEnd[i - 1], lo = Math.max(from, start), hi = Math.min(to, unitEnd[i]);
                if (lo >= hi) continue;
                FloatTensor m = w[i];
                if (m instanceof NativeRepackedTensor p) {
                    natives.matmulRepacked(m.type(), p.packed, cols, lo - start, hi - start, xq, tokens, out[i], rows[i]);
                } else {
                    natives.matmul(m.type(), m.data(), cols, lo - start, hi - start, xq, tokens, out[i], rows[i]);
                }
            }
        }
    }

    // ---- the Backend interface ----

    @Override
    public boolean supportsOp(Op op, GGMLType type) {
        return type == null || CpuWeights.SUPPORTED.contains(type);
    }

    @Override
    public WeightPreparer weights(GGUFFile gguf, Path file, RuntimeOptions options) {
        return new CpuWeights(this, gguf, file, options);
    }

    @Override
    public void embed(Weight table, StepBatch step, DeviceBuffer out, int outStride, int dim, float scale) {
        FloatTensor t = (FloatTensor) table;
        float[] o = HostBuffer.of(out);
        for (int j = 0; j < step.tokens; j++) {
            int off = j * outStride;
            t.copyTo((long) step.token[j] * dim, o, off, dim);
            if (scale != 1f) for (int i = 0; i < dim; i++) o[off + i] *= scale;
        }
    }

    @Override
    public void rmsnorm(DeviceBuffer out, int outOff, int outStride, DeviceBuffer x, int xOff, int xStride, Weight weight,
                        int tokens, int heads, int n, float eps) {
        float[] o = HostBuffer.of(out), in = HostBuffer.of(x);
        FloatTensor w = (FloatTensor) weight;
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) rmsnorm(o, outOff + t * outStride + h * n, in, xOff + t * xStride + h * n, w, n, eps);
        }
    }

    @Override
    public void matmul(Weight w, DeviceBuffer x, int xOff, int xStride, DeviceBuffer out, int outOff, int outStride,
                       int rows, int cols, int tokens) {
        FloatTensor t = (FloatTensor) w;
        if (runsNatively(t)) nativeMatmul(t, HostBuffer.of(x), xOff, xStride, HostBuffer.of(out), outOff, outStride, rows, cols, tokens);
        else if (tokens == 1) matmul(t, HostBuffer.of(x), xOff, HostBuffer.of(out), outOff, rows, cols);
        else matmulBatch(t, HostBuffer.of(x), xOff, xStride, HostBuffer.of(out), outOff, outStride, rows, cols, tokens);
    }

    @Override
    public void addBias(DeviceBuffer x, int off, int stride, Weight bias, int n, int tokens) {
        float[] v = HostBuffer.of(x);
        FloatTensor b = (FloatTensor) bias;
        for (int t = 0; t < tokens; t++) {
            int o = off + t * stride;
            for (int i = 0; i < n; i++) v[o + i] += b.getFloat(i);
        }
    }

    private final RopeAngles ropeAngles = new RopeAngles();

    @Override
    public void rope(DeviceBuffer x, int off, int stride, int heads, int headDim, StepBatch step, float[] invFreq, boolean neox) {
        float[] v = HostBuffer.of(x);
        int half = invFreq.length;
        synchronized (ropeAngles) {
            RopeAngles r = ropeAngles.of(step, invFreq);
            float[] cosines = r.cos, sines = r.sin;
            for (int t = 0; t < step.tokens; t++) {
                int a0 = t * half;
                for (int h = 0; h < heads; h++) {
                    int o = off + t * stride + h * headDim;
                    for (int i = 0; i < half; i++) {
                        float cos = cosines[a0 + i];
                        float sin = sines[a0 + i];
                        int i0 = neox ? o + i : o + 2 * i;
                        int i1 = neox ? o + i + half : o + 2 * i + 1;
                        float a = v[i0];
                        float b = v[i1];
                        v[i0] = a * cos - b * sin;
                        v[i1] = a * sin + b * cos;
                    }
                }
            }
        }
    }

    /**
     * The rotary angles' cosines and sines of a step's positions, kept while the positions and frequencies stay the
     * same: every head of the queries and keys of every layer rotates by the same angles, so they are computed once
     * per step, not per head and layer.
     */
    private static final class RopeAngles {
        float[] invFreq = new float[0];
        int[] pos = new int[0];
        int tokens = -1;
        float[] cos = new float[0], sin = new float[0];

        RopeAngles of(StepBatch step, float[] freq) {
            int n = step.tokens;
            if (n == tokens && java.util.Arrays.equals(freq, invFreq) && java.util.Arrays.equals(pos, 0, n, step.pos, 0, n)) return this;
            int half = freq.length;
            if (cos.length < n * half) {
                cos = new float[n * half];
                sin = new float[n * half];
            }
            if (pos.length < n) pos = new int[n];
            System.arraycopy(step.pos, 0, pos, 0, n);
            for (int t = 0; t < n; t++) {
                int p = step.pos[t];
                for (int i = 0; i < half; i++) {
                    double theta = p * (double) freq[i];
                    cos[t * half + i] = (float) Math.cos(theta);
                    sin[t * half + i] = (float) Math.sin(theta);
                }
            }
            if (invFreq.length != half) invFreq = new float[half];
            System.arraycopy(freq, 0, invFreq, 0, half);
            tokens = n;
            return this;
        }
    }

    @Override
    public void kvWrite(KvStorage kv, DeviceBuffer k, int kOff, int kStride, DeviceBuffer v, int vOff, int vStride, int kvDim,
                        StepBatch step) {
        HostKvStorage s = HostKvStorage.of(kv);
        float[] ks = HostBuffer.of(k), vs = HostBuffer.of(v);
        for (int t = 0; t < step.tokens; t++) {
            s.write(step.slot[t], step.pos[t], ks, kOff + t * kStride, vs, vOff + t * vStride);
            if (s.window > 0) step.tables[step.sequence[t]].recent(s, s.window, kvDim).put(step.pos[t], ks, kOff + t * kStride, vs, vOff + t * vStride);
        }
    }

    private final AttentionJob attention = new AttentionJob();
    /** Scratch for scores and KV rows on whichever worker runs an attention slice, grown on demand. */
    private final ThreadLocal<float[][]> scoreScratch = ThreadLocal.withInitial(() -> new float[1][0]);
    private final ThreadLocal<int[][]> rowScratch = ThreadLocal.withInitial(() -> new int[1][0]);
    private final ThreadLocal<CompressedAttention.Scratch> tileScratch = ThreadLocal.withInitial(CompressedAttention.Scratch::new);
    private final ThreadLocal<GroupedAttention.HeapSegments> heapSegments = ThreadLocal.withInitial(GroupedAttention.HeapSegments::new);

    @Override
    public void attention(KvStorage kv, DeviceBuffer q, int qOff, int qStride, DeviceBuffer out, int outOff, int outStride,
                          StepBatch step, int heads, int kvHeads, int headDim, float scale, float cap, int window) {
        synchronized (attention) {
            int longest = 0;
            for (int t = 0; t < step.tokens; t++) longest = Math.max(longest, step.pos[t] + 1);
            attention.set(HostKvStorage.of(kv), HostBuffer.of(q), qOff, qStride, HostBuffer.of(out), outOff, outStride, step,
                    heads / kvHeads, headDim, scale, cap, window, longest);
            // every (token, KV head) pair is independent: split by KV head, so each thread gets every token (a prompt
            // chunk's later tokens attend over more positions than its first ones) and reads its heads' rows only
            pool.run(step.tokens * kvHeads, attention);
            attention.set(null, null, 0, 0, null, 0, 0, null, 0, 0, 0, 0, 0, 0);
        }
    }

    /** The attention of a step over (token, KV head) pairs; index i is KV head i / tokens of token i % tokens. */
    private final class AttentionJob implements WorkerPool.Job {
        HostKvStorage kv;
        float[] q, out;
        int qOff, qStride, outOff, outStride, groups, headDim, window, longest;
        float scale, cap;
        StepBatch step;

        /** Counts attention calls: what a worker rebuilt in one call is not reused in the next. */
        long epoch;

        void set(HostKvStorage kv, float[] q, int qOff, int qStride, float[] out, int outOff, int outStride, StepBatch step,
                 int groups, int headDim, float scale, float cap, int window, int longest) {
            this.epoch++;
            this.kv = kv;
            this.q = q;
            this.qOff = qOff;
            this.qStride = qStride;
            this.out = out;
            this.outOff = outOff;
            this.outStride = outStride;
            this.step = step;
            this.groups = groups;
            this.headDim = headDim;
            this.scale = scale;
            this.cap = cap;
            this.window = window;
            this.longest = longest;
        }

        @Override
        public void run(int from, int to) {
            float[][] sHolder = scoreScratch.get();
            if (sHolder[0].length < longest * groups) sHolder[0] = new float[Math.max(longest * groups, 2 * sHolder[0].length)];
            int[][] rHolder = rowScratch.get();
            if (rHolder[0].length < longest) rHolder[0] = new int[Math.max(longest, 2 * rHolder[0].length)];
            float[] scores = sHolder[0];
            int[] rows = rHolder[0];
            CompressedAttention.Scratch tiles = kv.keys == null ? tileScratch.get() : null;
            // unrotated float16 keys and values: read in place, converted in registers
            KvRows.F16 half = kv.keyRows instanceof KvRows.F16 k16 && kv.valueRows instanceof KvRows.F16 && kv.keyRotation == null
                    && kv.valueRotation == null && GroupedAttention.halfFits(headDim, groups) ? k16 : null;
            KvRows.F16 halfValues = half != null ? (KvRows.F16) kv.valueRows : null;
            int total = step.tokens;
            for (int i = from; i < to; i++) {
                int j = i % total;
                int g = i / total;
                int h = g * groups;
                BlockTable table = step.tables[step.sequence[j]];
                int pos = step.pos[j];
                int first = window > 0 ? Math.max(0, pos - window + 1) : 0;
                if (half != null && natives != null && natives.attends()) {
                    GroupedAttention.attendNative(natives, true, half.segment(), halfValues.segment(), table, g * headDim, q, qOff + j * qStride + h * headDim,
                            out, outOff + j * outStride + h * headDim, groups, headDim, first, pos, scale, cap, scores, 0, longest, rows,
                            heapSegments.get());
                } else if (half != null) {
                    GroupedAttention.attendHalf(half.data, halfValues.data, table, g * headDim, q, qOff + j * qStride + h * headDim,
                            out, outOff + j * outStride + h * headDim, groups, headDim, first, pos, scale, cap, scores, 0, longest, rows);
                } else if (kv.keys != null && natives != null && natives.attends() && groups % 4 == 0 && headDim % 8 == 0) {
                    GroupedAttention.attendNative(natives, false, ((KvRows.F32) kv.keyRows).segment(), ((KvRows.F32) kv.valueRows).segment(), table, g * headDim, q,
                            qOff + j * qStride + h * headDim, out, outOff + j * outStride + h * headDim, groups, headDim, first, pos,
                            scale, cap, scores, 0, longest, rows, heapSegments.get());
                } else if (kv.keys != null) {
                    GroupedAttention.attend(CpuBackend.this, kv.keys, kv.values, table, g * headDim, q, qOff + j * qStride + h * headDim,
                            out, outOff + j * outStride + h * headDim, groups, headDim, first, pos, scale, cap, scores, 0, longest, rows);
                } else {
                    CompressedAttention.attend(kv, table, g * headDim, q, qOff + j * qStride + h * headDim,
                            out, outOff + j * outStride + h * headDim, groups, headDim, first, pos, scale, cap, scores, 0,
                            longest, tiles, natives, rows, heapSegments.get(), epoch);
                }
                float[] received = kv.attention();
                if (received != null && (j + 1 == total || step.sequence[j + 1] != step.sequence[j])) {
                    addAttention(received, g * kv.positions(), table, first, pos, scores, longest);
                }
            }
        }

        /**
         * Adds the probabilities the heads of one KV head gave each position to its slot: from a sequence's last token
         * in the step only (a prompt chunk's earlier tokens would add to the same slots from other threads), and only
         * in blocks this sequence alone holds (another sequence may be adding to a shared one now; shared blocks are
         * never evicted anyway).
         */
        private void addAttention(float[] received, int base, BlockTable table, int first, int pos, float[] probs, int stride) {
            KvPool pool = table.pool();
            int bs = pool.blockSize;
            for (int p = first; p <= pos; ) {
                int end = Math.min(pos + 1, (p / bs + 1) * bs);
                if (pool.refCount(table.block(p / bs)) == 1) {
                    for (int i = p; i < end; i++) {
                        float sum = 0;
                        for (int hh = 0; hh < groups; hh++) sum += probs[hh * stride + i - first];
                        received[base + table.slot(i)] += sum;
                    }
                }
                p = end;
            }
        }
    }

    @Override
    public boolean trackAttention(KvStorage kv) {
        HostKvStorage.of(kv).trackAttention();
        return true;
    }

    @Override
    public void gatedActivation(DeviceBuffer gate, int gOff, int gStride, DeviceBuffer up, int uOff, int uStride, int n,
                                int tokens, boolean gelu) {
        float[] g = HostBuffer.of(gate), u = HostBuffer.of(up);
        for (int t = 0; t < tokens; t++) {
            int go = gOff + t * gStride, uo = uOff + t * uStride;
            if (gelu) {
                for (int i = 0; i < n; i++) g[go + i] = gelu(g[go + i]) * u[uo + i];
            } else {
                VectorMath.siluMul(g, go, u, uo, n);
            }
        }
    }

    /** GELU, tanh approximation (as ggml). */
    static float gelu(float x) {
        return (float) (0.5 * x * (1.0 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
    }

    @Override
    public void add(DeviceBuffer x, int xOff, int xStride, DeviceBuffer y, int yOff, int yStride, int n, int tokens) {
        float[] a = HostBuffer.of(x), b = HostBuffer.of(y);
        for (int t = 0; t < tokens; t++) {
            int ao = xOff + t * xStride, bo = yOff + t * yStride;
            for (int i = 0; i < n; i++) a[ao + i] += b[bo + i];
        }
    }

    @Override
    public void gatherRows(DeviceBuffer src, int srcStride, int[] rows, int count, DeviceBuffer dst, int dstStride, int n) {
        float[] s = HostBuffer.of(src), d = HostBuffer.of(dst);
        for (int i = 0; i < count; i++) System.arraycopy(s, rows[i] * srcStride, d, i * dstStride, n);
    }

    @Override
    public void softmax(DeviceBuffer x, int off, int stride, int n, int rows) {
        float[] v = HostBuffer.of(x);
        for (int r = 0; r < rows; r++) softmax(v, off + r * stride, n);
    }
}
