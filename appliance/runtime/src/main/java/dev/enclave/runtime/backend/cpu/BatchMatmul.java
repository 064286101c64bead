package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.tensor.FloatTensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Many-token matrix product for prompt processing. Rows are decoded to float once per call (4 at a time, into a
 * per-thread buffer), then multiplied with the tokens in 4 x 4 register tiles: per 16 columns, 4 row loads and
 * 4 token loads feed 16 fused multiply-adds. Decoding is what makes a single-token product slow; here its cost
 * is shared by every token of the batch.
 */
final class BatchMatmul implements WorkerPool.Job {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int ROWS = 4;

    private final float[][] rowBuffers; // one per pool thread
    FloatTensor w;
    float[] x;
    int xOff;
    int xStride;
    float[] out;
    int outOff;
    int outStride;
    int cols;
    int tokens;
    int rows;

    BatchMatmul(int threads) {
        rowBuffers = new float[threads][];
    }

    void set(FloatTensor w, float[] x, int xOff, int xStride, float[] out, int outOff, int outStride, int rows, int cols, int tokens) {
        this.w = w;
        this.x = x;
        this.xOff = xOff;
        this.xStride = xStride;
        this.out = out;
        this.outOff = outOff;
        this.outStride = outStride;
        this.rows = rows;
        this.cols = cols;
        this.tokens = tokens;
    }

    /** Work is split by groups of 4 rows: index i covers rows [4i, 4i + 4). */
    int groups() {
        return (rows + ROWS - 1) / ROWS;
    }

    /** Up to this many tokens, rows are not decoded to floats: fused kernels take the tokens four at a time. */
    static final int FUSED_MAX_TOKENS = 8;

    @Override
    public void run(int from, int to) {
        if (tokens <= FUSED_MAX_TOKENS) {
            runFused(from, to);
            return;
        }
        int thread = WorkerPool.currentIndex();
        float[] buf = rowBuffers[thread];
        if (buf == null || buf.length < ROWS * cols) {
            buf = rowBuffers[thread] = new float[ROWS * cols];
        }
        for (int g = from; g < to; g++) {
            int r0 = g * ROWS;
            int nr = Math.min(ROWS, rows - r0);
            for (int k = 0; k < nr; k++) w.copyTo((long) (r0 + k) * cols, buf, k * cols, cols);
            if (nr == ROWS && cols % F.length() == 0) {
                int t = 0;
                for (; t + 4 <= tokens; t += 4) tile4x4(buf, r0, t);
                for (; t < tokens; t++) tile4x1(buf, r0, t);
            } else {
                for (int k = 0; k < nr; k++) {
                    for (int t = 0; t < tokens; t++) out[outOff + t * outStride + r0 + k] = dot(buf, k * cols, x, xOff + t * xStride, cols);
                }
            }
        }
    }

    /** Few tokens (a decode step of a handful of sequences): four tokens per pass over each weight row. */
    private void runFused(int from, int to) {
        int rEnd = Math.min(rows, to * ROWS);
        for (int r = from * ROWS; r < rEnd; r++) {
            long off = (long) r * cols;
            int t = 0;
            for (; t + 4 <= tokens; t += 4) {
                w.dot4(off, x, xOff + t * xStride, xOff + (t + 1) * xStride, xOff + (t + 2) * xStride, xOff + (t + 3) * xStride, cols, out, outOff + t * outStride + r, outStride);
            }
            for (; t < tokens; t++) out[outOff + t * outStride + r] = w.dot(off, x, xOff + t * xStride, cols);
        }
    }

    private void tile4x4(float[] b, int r0, int t) {
        int c = cols;
        int x0 = xOff + t * xStride, x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (int i = 0; i < c; i += F.length()) {
            FloatVector w0 = FloatVector.fromArray(F, b, i);
            FloatVector w1 = FloatVector.fromArray(F, b, c + i);
            FloatVector w2 = FloatVector.fromArray(F, b, 2 * c + i);
            FloatVector w3 = FloatVector.fromArray(F, b, 3 * c + i);
            FloatVector v = FloatVector.fromArray(F, x, x0 + i);
            a00 = w0.fma(v, a00);
            a10 = w1.fma(v, a10);
            a20 = w2.fma(v, a20);
            a30 = w3.fma(v, a30);
            v = FloatVector.fromArray(F, x, x1 + i);
            a01 = w0.fma(v, a01);
            a11 = w1.fma(v, a11);
            a21 = w2.fma(v, a21);
            a31 = w3.fma(v, a31);
            v = FloatVector.fromArray(F, x, x2 + i);
            a02 = w0.fma(v, a02);
            a12 = w1.fma(v, a12);
            a22 = w2.fma(v, a22);
            a32 = w3.fma(v, a32);
            v = FloatVector.fromArray(F, x, x3 + i);
            a03 = w0.fma(v, a03);
            a13 = w1.fma(v, a13);
            a23 = w2.fma(v, a23);
            a33 = w3.fma(v, a33);
        }
        int o = outOff + t * outStride + r0;
        store(o, a00, a10, a20, a30);
        store(o + outStride, a01, a11, a21, a31);
        store(o + 2 * outStride, a02, a12, a22, a32);
        store(o + 3 * outStride, a03, a13, a23, a33);
    }

    private void store(int o, FloatVector r0, FloatVector r1, FloatVector r2, FloatVector r3) {
        out[o] = r0.reduceLanes(VectorOperators.ADD);
        out[o + 1] = r1.reduceLanes(VectorOperators.ADD);
        out[o + 2] = r2.reduceLanes(VectorOperators.ADD);
        out[o + 3] = r3.reduceLanes(VectorOperators.ADD);
    }

    private void tile4x1(float[] b, int r0, int t) {
        int o = outOff + t * outStride + r0;
        for (int k = 0; k < ROWS; k++) out[o + k] = dot(b, k * cols, x, xOff + t * xStride, cols);
    }

    private static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i + F.length() <= n; i += F.length()) {
            acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

}
