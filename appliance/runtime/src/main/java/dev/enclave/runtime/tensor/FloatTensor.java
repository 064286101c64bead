package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A read-only tensor of float values stored in some ggml encoding inside a memory segment (usually a slice of a
 * memory-mapped GGUF file). Each encoding is a small subclass with its block layout and its dot product side by
 * side. Elements are addressed flat, in ggml order (row-major, row length = innermost dimension).
 */
public abstract class FloatTensor implements dev.enclave.runtime.backend.Weight {

    static final VectorSpecies<Float> F_SPECIES = FloatVector.SPECIES_PREFERRED;

    protected final MemorySegment data;
    protected final long size;

    protected FloatTensor(MemorySegment data, long size) {
        this.data = data;
        this.size = size;
    }

    /** Wraps {@code data} holding {@code elements} values of {@code type}. */
    public static FloatTensor of(GGMLType type, MemorySegment data, long elements) {
        return switch (type) {
            case F32 -> new F32Tensor(data, elements);
            case F16 -> new F16Tensor(data, elements);
            case BF16 -> new BF16Tensor(data, elements);
            case Q8_0 -> new Q8_0Tensor(data, elements);
            case Q4_0 -> new Q4_0Tensor(data, elements);
            case Q4_1 -> new Q4_1Tensor(data, elements);
            case Q5_0 -> new Q5_0Tensor(data, elements);
            case Q5_1 -> new Q5_1Tensor(data, elements);
            case Q2_K -> new Q2_KTensor(data, elements);
            case Q3_K -> new Q3_KTensor(data, elements);
            case Q4_K -> new Q4_KTensor(data, elements);
            case Q5_K -> new Q5_KTensor(data, elements);
            case Q6_K -> new Q6_KTensor(data, elements);
            case IQ4_NL -> new IQ4_NLTensor(data, elements);
            default -> throw new dev.enclave.runtime.ModelFormatException("tensor type " + type + " is not supported (supported: "
                    + "F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL)");
        };
    }

    public abstract GGMLType type();

    public long size() {
        return size;
    }

    public MemorySegment data() {
        return data;
    }

    public abstract float getFloat(long index);

    /** Sum of {@code this[offset + i] * that[thatOffset + i]} for i in [0, n). */
    public abstract float dot(long offset, float[] that, int thatOffset, int n);

    /**
     * Four dot products of the same weights with four vectors {@code x[x0..]}, {@code x[x1..]}, ... at once,
     * written to {@code out[o], out[o + stride], out[o + 2 stride], out[o + 3 stride]}. Types with a fused kernel
     * decode each block once for all four; this default simply calls {@link #dot} four times.
     */
    public void dot4(long offset, float[] x, int x0, int x1, int x2, int x3, int n, float[] out, int o, int stride) {
        out[o] = dot(offset, x, x0, n);
        out[o + stride] = dot(offset, x, x1, n);
        out[o + 2 * stride] = dot(offset, x, x2, n);
        out[o + 3 * stride] = dot(offset, x, x3, n);
    }

    /** Copies {@code n} values starting at {@code offset} into {@code out} (dequantizing). */
    public void copyTo(long offset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = getFloat(offset + i);
        }
    }
}
