package dev.enclave.runtime.backend;

import java.util.Locale;

/**
 * How one of a layer's KV tensors (keys or values) is stored: float32, float16, ggml-style blocks of 8-bit or 4-bit
 * integers with one float16 scale per group of {@link #group} values of a head (Q8_0's and Q4_0's rounding), or 3-bit
 * and 2-bit codes into a Lloyd-Max codebook for a unit Gaussian scaled by the group's RMS (TurboQuant's scalar stage:
 * meant for rotated rows, whose coordinates are close to Gaussian). {@code Q3J} and {@code Q4J} are TurboQuant's
 * inner-product stage at 3 and 4 bits: codes at one bit fewer plus a 1-bit QJL sketch of their residual per head
 * ({@link KvRows.Sketched}).
 */
public enum KvFormat {
    F32(32, 0, false), F16(16, 0, false), Q8(8, 16, false), Q4(4, 16, false), Q3(3, 16, false), Q2(2, 16, false),
    Q3J(2, 16, true), Q4J(3, 16, true),
    /** Transform-coded ({@link KvCode}): bits vary per coefficient and head; a {@link KvType} with a code gives the sizes. */
    TC(0, 0, false);

    /** Bits per stored value (the codes' alone for a sketched format), and bits of scale per group. */
    public final int bits;
    public final int scaleBits;
    /** Whether a row also keeps one sign bit per value and a float16 residual norm per head (QJL). */
    public final boolean sketch;

    KvFormat(int bits, int scaleBits, boolean sketch) {
        this.bits = bits;
        this.scaleBits = scaleBits;
        this.sketch = sketch;
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
        return bits + (double) scaleBits / group(headDim) + (sketch ? 1 + 16.0 / headDim : 0);
    }

    /** Bytes of one position's {@code kvDim} values. */
    public long bytesPerRow(int kvDim, int headDim) {
        return (long) kvDim * bits / 8 + (long) kvDim / group(headDim) * scaleBits / 8
                + (sketch ? kvDim / 8 + (long) kvDim / headDim * 2 : 0);
    }

    public static KvFormat parse(String s) {
        return switch (s.strip().toLowerCase(Locale.ROOT)) {
            case "f32" -> F32;
            case "f16" -> F16;
            case "q8", "q8_0" -> Q8;
            case "q4", "q4_0" -> Q4;
            case "q3" -> Q3;
            case "q2" -> Q2;
            case "q3j" -> Q3J;
            case "q4j" -> Q4J;
            case "tc" -> throw new IllegalArgumentException("a transform-coded cache is calibrated for one model: tc:FILE (perplexity --kv-code BITS --save-kv-code FILE)");
            default -> throw new IllegalArgumentException("unknown KV cache format '" + s + "' (f32, f16, q8, q4, q3, q2, q3j, q4j)");
        };
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
