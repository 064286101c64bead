package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.tensor.VectorMath;
import dev.enclave.runtime.backend.KernelBackend;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tensor.RowGroupTensor;
import dev.enclave.runtime.tensor.Q8Activations;

/**
 * Kernels on the CPU. The per-type dot products (Vector API) live in the tensor classes; this backend splits
 * matrix rows statically across a {@link WorkerPool}. Small products stay on the calling thread, where handing
 * off would cost more than it saves.
 */
public final class CpuBackend implements KernelBackend {

    private static volatile CpuBackend instance;
    /** Below this many multiply-adds a matmul stays on one thread. */
    private static final long PARALLEL_THRESHOLD = 1L << 15;

    private final WorkerPool pool;
    private final MatmulJob matmul = new MatmulJob();
    private final BatchMatmul batch;
    private final GroupMatmul groups = new GroupMatmul();
    private final QuantizeJob quantize = new QuantizeJob();

    public CpuBackend(int threads) {
        this.pool = new WorkerPool(threads);
        this.batch = new BatchMatmul(threads);
    }

    /** The shared backend: {@code -Denclave.threads=N} threads (the device profile's inference cores), else one per processor. */
    public static CpuBackend instance() {
        CpuBackend b = instance;
        if (b == null) {
            synchronized (CpuBackend.class) {
                b = instance;
                if (b == null) instance = b = new CpuBackend(Math.max(1, Integer.getInteger("enclave.threads", Runtime.getRuntime().availableProcessors())));
            }
        }
        return b;
    }

    public int threads() {
        return pool.threads();
    }

    public WorkerPool pool() {
        return pool;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public boolean isAvailable() {
        return true;
    }

    @Override
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

    @Override
    public void matmulBatch(FloatTensor w, float[] x, int xStride, float[] out, int outOff, int outStride, int rows, int cols, int tokens) {
        if (w instanceof RowGroupTensor q) {
            grouped(q, x, 0, xStride, out, outOff, outStride, rows, cols, tokens);
            return;
        }
        synchronized (batch) {
            batch.set(w, x, xStride, out, outOff, outStride, rows, cols, tokens);
            pool.run(batch.groups(), batch);
            batch.set(null, null, 0, null, 0, 0, 0, 0, 0);
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

    @Override
    public void parallel(int size, dev.enclave.runtime.backend.RangeJob job) {
        pool.run(size, job);
    }

    @Override
    public void rmsnorm(float[] out, int outOff, float[] x, int xOff, FloatTensor weight, int n, float eps) {
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

    @Override
    public void softmax(float[] x, int off, int n) {
        float max = VectorMath.max(x, off, n);
        double sum = VectorMath.expShifted(x, off, x, off, n, max, 1f);
        VectorMath.scale(x, off, n, (float) (1.0 / sum));
    }
}
