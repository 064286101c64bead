package dev.enclave.runtime.backend;

import dev.enclave.runtime.tensor.FloatTensor;

/**
 * Per-operation kernels. Vectors are float arrays with offsets so that callers can keep one preallocated
 * buffer per purpose and never allocate in the decode loop.
 */
public non-sealed interface KernelBackend extends Backend {

    /** {@code out[outOff + r] = dot(w row r, x[xOff ..])} for r in [0, rows), with {@code cols} values per row. */
    void matmul(FloatTensor w, float[] x, int xOff, float[] out, int outOff, int rows, int cols);

    /**
     * The same product for {@code tokens} input vectors at once (prompt processing): input t is
     * {@code x[t * xStride ..]}, its output {@code out[outOff + t * outStride ..]}. Each weight row is read once
     * for all tokens.
     */
    void matmulBatch(FloatTensor w, float[] x, int xStride, float[] out, int outOff, int outStride, int rows, int cols, int tokens);

    /** {@code out = x / sqrt(mean(x^2) + eps) * weight} over {@code n} values. */
    void rmsnorm(float[] out, int outOff, float[] x, int xOff, FloatTensor weight, int n, float eps);

    /** In-place softmax over {@code x[off .. off+n)}. */
    void softmax(float[] x, int off, int n);

    /** Runs {@code job} over [0, size), split across the backend's threads where it has several. */
    default void parallel(int size, RangeJob job) {
        job.run(0, size);
    }
}
