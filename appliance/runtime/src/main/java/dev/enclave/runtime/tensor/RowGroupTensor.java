package dev.enclave.runtime.tensor;

/**
 * A matrix repacked at load into groups of 32 rows with the rows across the vector lanes ({@link Q4x32Tensor},
 * {@link Int8x32Tensor}). Products go through these kernels instead of per-row dot products: the integer ones take
 * activations quantized like ggml's ({@link Q8Activations}), the float tile takes float activations.
 */
public interface RowGroupTensor {

    /** Tokens per call of {@link #multiplyFloat8}. */
    int FLOAT_TILE_TOKENS = 8;

    int rows();

    int cols();

    /** Number of 32-row groups: the unit of work split across threads. */
    default int groups() {
        return rows() / 32;
    }

    /** Rows of groups [from, to) times quantized token {@code t}: {@code out[o + r]}. */
    void multiply(Q8Activations a, int t, int from, int to, float[] out, int o);

    /** The same for tokens t .. t + 3; token i's outputs at {@code out[o + i * stride + r]}. */
    void multiply4(Q8Activations a, int t, int from, int to, float[] out, int o, int stride);

    /** Rows of groups [from, to) times 8 float tokens {@code x[xOff + i * xStride ..]}; outputs as {@link #multiply4}. */
    void multiplyFloat8(float[] x, int xOff, int xStride, int from, int to, float[] out, int o, int stride);
}
