package dev.enclave.runtime.backend;

import java.util.Locale;

/**
 * A model's KV cache type: the format of the keys and of the values (they may differ: 8-bit keys with 4-bit values),
 * and whether each is rotated per head (a Walsh–Hadamard transform with fixed random signs, so that an outlier
 * channel spreads over the whole head before quantizing; queries get the same rotation, outputs the inverse).
 *
 * <p>Written {@code f32}, {@code q8}, {@code q4r} (rotated), or {@code K/V} for different keys and values:
 * {@code q8/q4}, {@code q8r/q4r}.
 */
public record KvType(KvFormat keys, boolean rotateKeys, KvFormat values, boolean rotateValues) {

    public static final KvType F32 = new KvType(KvFormat.F32, false, KvFormat.F32, false);

    public KvType {
        if (keys == null || values == null) throw new IllegalArgumentException("KV formats must be given");
    }

    public static KvType parse(String spec) {
        String s = spec == null ? "" : spec.strip().toLowerCase(Locale.ROOT);
        if (s.isEmpty()) throw new IllegalArgumentException("empty KV cache type (f32, f16, q8, q4, q8r, q4r, or K/V)");
        String[] parts = s.split("/", -1);
        if (parts.length > 2) throw new IllegalArgumentException("KV cache type '" + spec + "': at most one '/' (keys/values)");
        String k = parts[0], v = parts.length == 2 ? parts[1] : parts[0];
        return new KvType(format(k, spec), rotated(k), format(v, spec), rotated(v));
    }

    private static boolean rotated(String part) {
        return part.endsWith("r") && part.length() > 1;
    }

    private static KvFormat format(String part, String spec) {
        String base = rotated(part) ? part.substring(0, part.length() - 1) : part;
        try {
            KvFormat f = KvFormat.parse(base);
            if (rotated(part) && !f.quantized()) throw new IllegalArgumentException("rotation is for the quantized formats (q8r, q4r, q3r, q2r)");
            return f;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("KV cache type '" + spec + "': " + e.getMessage());
        }
    }

    /** Refuses a type this model's heads cannot take (rotation needs a power-of-two head size). */
    public void check(int headDim) {
        if ((rotateKeys || rotateValues) && Integer.bitCount(headDim) != 1) {
            throw new IllegalArgumentException("KV cache type " + this + ": rotation needs a power-of-two head size, not " + headDim);
        }
    }

    /** Bytes one position takes in one layer (keys and values, scales included). */
    public long bytesPerPosition(int kvDim, int headDim) {
        return keys.bytesPerRow(kvDim, headDim) + values.bytesPerRow(kvDim, headDim);
    }

    /** Average bits per cached value (keys and values), scales included. */
    public double bitsPerValue(int headDim) {
        return (keys.bitsPerValue(headDim) + values.bitsPerValue(headDim)) / 2;
    }

    @Override
    public String toString() {
        String k = keys + (rotateKeys ? "r" : ""), v = values + (rotateValues ? "r" : "");
        return k.equals(v) ? k : k + "/" + v;
    }
}
