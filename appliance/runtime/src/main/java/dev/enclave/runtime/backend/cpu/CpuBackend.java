package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.backend.KernelBackend;
import dev.enclave.runtime.tensor.FloatTensor;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/**
 * Kernels on the CPU with the Vector API (inside the tensor classes). Large matrix products are split by rows
 * across a fork-join pool sized to the machine; small ones run on the calling thread, where splitting would
 * cost more than it saves.
 */
public final class CpuBackend implements KernelBackend {

    private static final CpuBackend INSTANCE = new CpuBackend(ForkJoinPool.commonPool());
    /** Below this many multiply-adds a matmul stays on one thread. */
    private static final long PARALLEL_THRESHOLD = 1L << 16;

    private final ForkJoinPool pool;

    public CpuBackend(ForkJoinPool pool) {
        this.pool = pool;
    }

    public static CpuBackend instance() {
        return INSTANCE;
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
        if ((long) rows * cols < PARALLEL_THRESHOLD || pool.getParallelism() <= 1) {
            rowRange(w, x, xOff, out, outOff, cols, 0, rows);
            return;
        }
        int chunks = Math.min(rows, pool.getParallelism() * 4);
        pool.invoke(new RowSplit(w, x, xOff, out, outOff, cols, rows, chunks, 0, chunks));
    }

    static void rowRange(FloatTensor w, float[] x, int xOff, float[] out, int outOff, int cols, int from, int to) {
        for (int r = from; r < to; r++) {
            out[outOff + r] = w.dot((long) r * cols, x, xOff, cols);
        }
    }

    private static final class RowSplit extends RecursiveAction {
        final FloatTensor w;
        final float[] x;
        final int xOff;
        final float[] out;
        final int outOff;
        final int cols;
        final int rows;
        final int chunks;
        final int lo;
        final int hi;

        RowSplit(FloatTensor w, float[] x, int xOff, float[] out, int outOff, int cols, int rows, int chunks, int lo, int hi) {
            this.w = w;
            this.x = x;
            this.xOff = xOff;
            this.out = out;
            this.outOff = outOff;
            this.cols = cols;
            this.rows = rows;
            this.chunks = chunks;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        protected void compute() {
            if (hi - lo == 1) {
                int from = (int) ((long) rows * lo / chunks);
                int to = (int) ((long) rows * hi / chunks);
                rowRange(w, x, xOff, out, outOff, cols, from, to);
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new RowSplit(w, x, xOff, out, outOff, cols, rows, chunks, lo, mid),
                    new RowSplit(w, x, xOff, out, outOff, cols, rows, chunks, mid, hi));
        }
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
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) {
            x[off + i] *= inv;
        }
    }
}
