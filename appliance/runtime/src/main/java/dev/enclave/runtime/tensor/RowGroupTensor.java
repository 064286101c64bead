package dev.enclave.runtime.tensor;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * A matrix repacked at load into groups of 32 rows with the rows across the vector lanes ({@link Q4x32Tensor},
 * {@link Int8x32Tensor}). Products go through these kernels instead of per-row dot products: the integer ones take
 * activations quantized like ggml's ({@link Q8Activations}), the float tile takes float activations. Single values
 * and rows ({@link #getFloat}, {@link #copyTo}, {@link #dot}) stay available for lookups, slowly.
 */
public abstract class RowGroupTensor extends FloatTensor {

    /** Tokens per call of {@link #multiplyFloat8}. */
    public static final int FLOAT_TILE_TOKENS = 8;

    protected final int rows;
    protected final int cols;

    protected RowGroupTensor(MemorySegment data, int rows, int cols) {
        super(data, (long) rows * cols);
        this.rows = rows;
        this.cols = cols;
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    /** Number of 32-row groups: the unit of work split across threads. */
    public final int groups() {
        return rows / 32;
    }

    /** Rows of groups [from, to) times quantized token {@code t}: {@code out[o + r]}. */
    public abstract void multiply(Q8Activations a, int t, int from, int to, float[] out, int o);

    /** The same for tokens t .. t + 3; token i's outputs at {@code out[o + i * stride + r]}. */
    public abstract void multiply4(Q8Activations a, int t, int from, int to, float[] out, int o, int stride);

    /** Rows of groups [from, to) times 8 float tokens {@code x[xOff + i * xStride ..]}; outputs as {@link #multiply4}. */
    public abstract void multiplyFloat8(float[] x, int xOff, int xStride, int from, int to, float[] out, int o, int stride);

    @Override
    public void copyTo(long offset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) out[outOffset + i] = getFloat(offset + i);
    }

    /** A float dot product of one row through {@link #getFloat} (exact, slow: the kernels are the fast route). */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += getFloat(offset + i) * x[xo + i];
        return s;
    }

    /** Writes an 8-token x 32-row tile: token i's rows 0-15 from {@code ai0}, rows 16-31 from {@code ai1}. */
    static void storeTile(float[] out, int r, int stride, FloatVector a00, FloatVector a01, FloatVector a10, FloatVector a11,
                          FloatVector a20, FloatVector a21, FloatVector a30, FloatVector a31, FloatVector a40, FloatVector a41,
                          FloatVector a50, FloatVector a51, FloatVector a60, FloatVector a61, FloatVector a70, FloatVector a71) {
        a00.intoArray(out, r);
        a01.intoArray(out, r + 16);
        a10.intoArray(out, r + stride);
        a11.intoArray(out, r + stride + 16);
        a20.intoArray(out, r + 2 * stride);
        a21.intoArray(out, r + 2 * stride + 16);
        a30.intoArray(out, r + 3 * stride);
        a31.intoArray(out, r + 3 * stride + 16);
        a40.intoArray(out, r + 4 * stride);
        a41.intoArray(out, r + 4 * stride + 16);
        a50.intoArray(out, r + 5 * stride);
        a51.intoArray(out, r + 5 * stride + 16);
        a60.intoArray(out, r + 6 * stride);
        a61.intoArray(out, r + 6 * stride + 16);
        a70.intoArray(out, r + 7 * stride);
        a71.intoArray(out, r + 7 * stride + 16);
    }
}
