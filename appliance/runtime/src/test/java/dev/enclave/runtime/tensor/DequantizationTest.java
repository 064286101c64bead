package dev.enclave.runtime.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Decodes random blocks of every supported type and compares each value with a per-element formula written
 * independently of the tensor classes (element index → bytes and bits, instead of ggml's loop structure), bit
 * for bit. Also checks that the fused dot product equals the dot of the decoded values.
 */
class DequantizationTest {

    @ParameterizedTest
    @EnumSource(value = GGMLType.class, names = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"})
    void everyValueMatchesTheIndependentFormula(GGMLType type) {
        SplittableRandom r = new SplittableRandom(type.id * 31L + 7);
        int blocks = 3;
        int n = type.blockSize == 1 ? 96 : blocks * type.blockSize;
        byte[] bytes = new byte[(int) type.byteSize(n)];
        r.nextBytes(bytes);
        // put sane half-precision scales where the layout has them, so values are finite
        if (type.blockSize > 1) {
            for (int b = 0; b < n / type.blockSize; b++) {
                for (int off : halfOffsets(type)) {
                    short h = Float.floatToFloat16((float) (r.nextDouble(-2, 2) / 64));
                    bytes[b * type.blockBytes + off] = (byte) h;
                    bytes[b * type.blockBytes + off + 1] = (byte) (h >> 8);
                }
            }
        } else if (type == GGMLType.F16 || type == GGMLType.BF16) {
            for (int i = 0; i < n; i++) {
                float v = (float) r.nextDouble(-4, 4);
                short h = type == GGMLType.F16 ? Float.floatToFloat16(v) : (short) (Float.floatToRawIntBits(v) >>> 16);
                bytes[2 * i] = (byte) h;
                bytes[2 * i + 1] = (byte) (h >> 8);
            }
        }
        FloatTensor t = FloatTensor.of(type, MemorySegment.ofArray(bytes), n);
        float[] all = new float[n];
        t.copyTo(0, all, 0, n);
        double dot = 0;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            float expected = Reference.value(type, bytes, i);
            assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(t.getFloat(i)), type + " element " + i + ": " + expected + " vs " + t.getFloat(i));
            assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(all[i]), type + " copyTo element " + i);
            x[i] = (float) r.nextDouble(-1, 1);
            dot += (double) expected * x[i];
        }
        assertEquals(dot, t.dot(0, x, 0, n), 1e-3 * Math.max(1, Math.abs(dot)), type + " dot");
    }

    @org.junit.jupiter.api.Test
    void int8RepackOfQ6_KIsLossless() {
        SplittableRandom r = new SplittableRandom(99);
        int n = 4 * 256;
        byte[] bytes = new byte[(int) GGMLType.Q6_K.byteSize(n)];
        r.nextBytes(bytes);
        for (int b = 0; b < n / 256; b++) {
            short h = Float.floatToFloat16((float) r.nextDouble(0.001, 0.05));
            bytes[b * 210 + 208] = (byte) h;
            bytes[b * 210 + 209] = (byte) (h >> 8);
        }
        Q6_KTensor q6 = new Q6_KTensor(MemorySegment.ofArray(bytes), n);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            Int8RowsTensor packed = Int8RowsTensor.fromQ6_K(q6, arena);
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToIntBits(q6.getFloat(i)), Float.floatToIntBits(packed.getFloat(i)), "value " + i);
                x[i] = (float) r.nextDouble(-1, 1);
            }
            assertEquals(q6.dot(0, x, 0, n), packed.dot(0, x, 0, n), 1e-3);
        }
    }

    private static int[] halfOffsets(GGMLType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q5_0, IQ4_NL -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            case Q6_K -> new int[] {208};
            default -> new int[0];
        };
    }

    /** Per-element decoding straight from the block layouts in ggml-common.h. */
    static final class Reference {
        static int u8(byte[] b, int i) {
            return b[i] & 0xFF;
        }

        static float half(byte[] b, int i) {
            return Float.float16ToFloat((short) (u8(b, i) | u8(b, i + 1) << 8));
        }

        static float value(GGMLType type, byte[] b, int k) {
            int base = type.blockSize == 1 ? 0 : k / type.blockSize * type.blockBytes;
            int e = type.blockSize == 1 ? k : k % type.blockSize;
            switch (type) {
                case F16:
                    return half(b, 2 * k);
                case BF16:
                    return Float.intBitsToFloat((u8(b, 2 * k) | u8(b, 2 * k + 1) << 8) << 16);
                case Q8_0:
                    return b[base + 2 + e] * half(b, base);
                case Q4_0: {
                    int q = nibble(b, base + 2, e);
                    return (q - 8) * half(b, base);
                }
                case Q4_1: {
                    int q = nibble(b, base + 4, e);
                    return q * half(b, base) + half(b, base + 2);
                }
                case Q5_0: {
                    int q = nibble(b, base + 6, e) | (bit(b, base + 2, e) << 4);
                    return (q - 16) * half(b, base);
                }
                case Q5_1: {
                    int q = nibble(b, base + 8, e) | (bit(b, base + 4, e) << 4);
                    return q * half(b, base) + half(b, base + 2);
                }
                case IQ4_NL:
                    return half(b, base) * IQ4_NLTensor.VALUES[nibble(b, base + 2, e)];
                case Q2_K: {
                    int half128 = e / 128, rr = e % 128, j = rr / 32, sub = (rr % 32) / 16, l = rr % 16;
                    int q = (u8(b, base + 16 + 32 * half128 + 16 * sub + l) >> (2 * j)) & 3;
                    int sc = u8(b, base + 8 * half128 + 2 * j + sub);
                    float dl = half(b, base + 80) * (sc & 0xF);
                    float ml = half(b, base + 82) * (sc >> 4);
                    return dl * q - ml;
                }
                case Q3_K: {
                    int half128 = e / 128, rr = e % 128, j = rr / 32, sub = (rr % 32) / 16, l = rr % 16;
                    int q = (u8(b, base + 32 + 32 * half128 + 16 * sub + l) >> (2 * j)) & 3;
                    boolean hbit = (u8(b, base + 16 * sub + l) & (1 << (4 * half128 + j))) != 0;
                    int is = 8 * half128 + 2 * j + sub;
                    int low = is < 8 ? u8(b, base + 96 + is) & 0xF : u8(b, base + 96 + is - 8) >> 4;
                    int high = (u8(b, base + 96 + 8 + is % 4) >> (2 * (is / 4))) & 3;
                    int sc = (byte) (low | high << 4); // as int8
                    float dl = half(b, base + 108) * (sc - 32);
                    return dl * (q - (hbit ? 0 : 4));
                }
                case Q4_K, Q5_K: {
                    int group = e / 64, within = e % 64, is = 2 * group + (within >= 32 ? 1 : 0), l = within % 32;
                    int qsBase = type == GGMLType.Q4_K ? 16 : 48;
                    int byteQ = u8(b, base + qsBase + 32 * group + l);
                    int q = within < 32 ? byteQ & 0xF : byteQ >> 4;
                    if (type == GGMLType.Q5_K && (u8(b, base + 16 + l) & (1 << is)) != 0) q += 16;
                    int sc;
                    int m;
                    int s = base + 4;
                    if (is < 4) {
                        sc = u8(b, s + is) & 63;
                        m = u8(b, s + is + 4) & 63;
                    } else {
                        sc = (u8(b, s + is + 4) & 0xF) | ((u8(b, s + is - 4) >> 6) << 4);
                        m = (u8(b, s + is + 4) >> 4) | ((u8(b, s + is) >> 6) << 4);
                    }
                    float d1 = half(b, base) * sc;
                    float m1 = half(b, base + 2) * m;
                    return d1 * q - m1;
                }
                case Q6_K: {
                    int half128 = e / 128, rr = e % 128, quadrant = rr / 32, l = rr % 32;
                    int qlByte = u8(b, base + 64 * half128 + l + (quadrant % 2 == 1 ? 32 : 0));
                    int low = quadrant < 2 ? qlByte & 0xF : qlByte >> 4;
                    int high = (u8(b, base + 128 + 32 * half128 + l) >> (2 * quadrant)) & 3;
                    int q = (low | high << 4) - 32;
                    int sc = b[base + 192 + 8 * half128 + l / 16 + 2 * quadrant];
                    return half(b, base + 208) * sc * q;
                }
                default:
                    throw new IllegalArgumentException(type.toString());
            }
        }

        /** 4-bit value e of a 32-value block whose nibbles start at {@code qs}: low nibbles 0..15, high 16..31. */
        static int nibble(byte[] b, int qs, int e) {
            int v = u8(b, qs + e % 16);
            return e < 16 ? v & 0xF : v >> 4;
        }

        /** Bit e of the little-endian 32-bit word at {@code at}. */
        static int bit(byte[] b, int at, int e) {
            return (u8(b, at + e / 8) >> (e % 8)) & 1;
        }
    }

    /** The vectorized F16 dot product on the awkward halves: zeros of both signs, subnormals, the extremes. */
    @org.junit.jupiter.api.Test
    void f16DotHandlesSignsSubnormalsAndExtremes() {
        short[] special = {0x0000, (short) 0x8000, 0x0001, (short) 0x8001, 0x03FF, (short) 0x83FF, 0x0400, (short) 0x8400,
                0x3C00, (short) 0xBC00, 0x7BFF, (short) 0xFBFF, 0x3555, (short) 0xB555, 0x1234, (short) 0x9234};
        byte[] bytes = new byte[2 * special.length];
        for (int i = 0; i < special.length; i++) {
            bytes[2 * i] = (byte) special[i];
            bytes[2 * i + 1] = (byte) (special[i] >> 8);
        }
        FloatTensor t = FloatTensor.of(GGMLType.F16, MemorySegment.ofArray(bytes), special.length);
        for (int i = 0; i < special.length; i++) {
            float[] x = new float[special.length];
            x[i] = 1f;
            float expected = Float.float16ToFloat(special[i]);
            assertEquals(expected, t.dot(0, x, 0, special.length), 0f, "half 0x" + Integer.toHexString(special[i] & 0xFFFF));
        }
    }
}
