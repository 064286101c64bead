package dev.enclave.runtime.backend;

import java.util.Locale;

/**
 * How one of a layer's KV tensors (keys or values) is stored: float32, float16, ggml-style blocks of 8-bit or 4-bit
 * integers with one float16 scale per group of {@link #group} values of a head (Q8_0's and Q4_0's rounding), or 3-bit
 * and 2-bit codes into a Lloyd-Max codebook for a unit Gaussian scaled by the group's RMS (TurboQuant's scalar stage:
 * meant for rotated rows, whose coordinates are close to Gaussian).
 */
public enum KvFormat {
    F32(32, 0), F16(16, 0), Q8(8, 16), Q4(4, 16), Q3(3, 16), Q2(2, 16);

    /** Bits per stored value, and bits of scale per group. */
    public final int bits;
    public final int scaleBits;

    KvFormat(int bits, int scaleBits) {
        this.bits = bits;
        this.scaleBits = scaleBits;
    }

    public boolean quantized() {
        return scaleBits > 0;
    }

    /** The group a scale covers within a head of {@code headDim} values: 32, or the largest power of two dividing it. */
    public static int group(int headDim) {
        return Math.min(32, Integer.lowestOneBit(headDim));
    }

    /** Bits per value, scales included, for heads of {@code headDim} values. */
    public double bitsPerValue(int headDim) {
        return bits + (double) scaleBits / group(headDim);
    }

    /** Bytes of one position's {@code kvDim} values. */
    public long bytesPerRow(int kvDim, int headDim) {
        return (long) kvDim * bits / 8 + (long) kvDim / group(headDim) * scaleBits / 8;
    }

    public static KvFormat parse(String s) {
        return switch (s.strip().toLowerCase(Locale.ROOT)) {
            case "f32" -> F32;
            case "f16" -> F16;
            case "q8", "q8_0" -> Q8;
            case "q4", "q4_0" -> Q4;
            case "q3" -> Q3;
            case "q2" -> Q2;
            default -> throw new IllegalArgumentException("unknown KV cache format '" + s + "' (f32, f16, q8, q4, q3, q2)");
        };
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
