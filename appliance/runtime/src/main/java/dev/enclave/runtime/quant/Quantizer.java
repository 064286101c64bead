package dev.enclave.runtime.quant;

import dev.enclave.runtime.gguf.GGMLType;

/**
 * Float rows to ggml block formats, laid out exactly as ggml reads them. Q8_0 and Q4_0 follow ggml's reference
 * quantizers; the K-quants use a simple (not error-optimal) choice of scales, which is all random-weight
 * benchmark models need: the bytes are valid and decode to values close to the input.
 */
public final class Quantizer {

    private Quantizer() {
    }

    public static boolean supports(GGMLType t) {
        return switch (t) {
            case F32, F16, Q8_0, Q4_0, Q4_K, Q6_K -> true;
            default -> false;
        };
    }

    /** Quantizes {@code n} values (a whole number of blocks) into a new byte array. */
    public static byte[] quantize(GGMLType type, float[] x, int n) {
        byte[] out = new byte[(int) type.byteSize(n)];
        switch (type) {
            case F32 -> {
                for (int i = 0; i < n; i++) putInt(out, 4 * i, Float.floatToRawIntBits(x[i]));
            }
            case F16 -> {
                for (int i = 0; i < n; i++) putShort(out, 2 * i, Float.floatToFloat16(x[i]));
            }
            case Q8_0 -> {
                for (int b = 0; b < n / 32; b++) q8_0(x, b * 32, out, b * 34);
            }
            case Q4_0 -> {
                for (int b = 0; b < n / 32; b++) q4_0(x, b * 32, out, b * 18);
            }
            case Q4_K -> {
                for (int b = 0; b < n / 256; b++) q4_k(x, b * 256, out, b * 144);
            }
            case Q6_K -> {
                for (int b = 0; b < n / 256; b++) q6_k(x, b * 256, out, b * 210);
            }
            default -> throw new IllegalArgumentException("no quantizer for " + type);
        }
        return out;
    }

    static void q8_0(float[] x, int xo, byte[] out, int o) {
        putShort(out, o, q8Group(x, xo, 32, out, o + 2));
    }

    static void q4_0(float[] x, int xo, byte[] out, int o) {
        putShort(out, o, q4Group(x, xo, 32, out, o + 2));
    }

    /**
     * Q8_0's rule for one group of {@code n} values: d = max|x| / 127, q = round(x / d) half away from zero (C's
     * roundf, as ggml); the quants go to {@code q[qo..]}, the float16 d is returned. The KV cache's 8-bit rows use it
     * with groups smaller than 32 too.
     */
    public static short q8Group(float[] x, int xo, int n, byte[] q, int qo) {
        float amax = 0;
        for (int j = 0; j < n; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        for (int j = 0; j < n; j++) {
            float v = x[xo + j] * id;
            q[qo + j] = (byte) (int) Math.copySign((float) Math.round(Math.abs(v)), v);
        }
        return Float.floatToFloat16(d);
    }

    /**
     * Q4_0's rule for one group of {@code n} values: d = (the value of largest magnitude) / -8, q = x / d + 8 clamped to
     * 15; byte j holds value j in its low nibble and value j + n/2 in its high one; the float16 d is returned.
     */
    public static short q4Group(float[] x, int xo, int n, byte[] q, int qo) {
        float amax = 0;
        float max = 0;
        for (int j = 0; j < n; j++) {
            float v = x[xo + j];
            if (Math.abs(v) > amax) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8f;
        float id = d != 0 ? 1f / d : 0f;
        int half = n / 2;
        for (int j = 0; j < half; j++) {
            int q0 = Math.min(15, (int) (x[xo + j] * id + 8.5f));
            int q1 = Math.min(15, (int) (x[xo + j + half] * id + 8.5f));
            q[qo + j] = (byte) (q0 | (q1 << 4));
        }
        return Float.floatToFloat16(d);
    }

    static void q4_k(float[] x, int xo, byte[] out, int o) {
        float[] scale = new float[8];
        float[] min = new float[8];
        float maxScale = 0;
        float maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float lo = 0;
            float hi = 0;
            for (int l = 0; l < 32; l++) {
                lo = Math.min(lo, x[xo + 32 * j + l]);
                hi = Math.max(hi, x[xo + 32 * j + l]);
            }
            scale[j] = (hi - lo) / 15f;
            min[j] = -lo;
            maxScale = Math.max(maxScale, scale[j]);
            maxMin = Math.max(maxMin, min[j]);
        }
        float d = maxScale / 63f;
        float dmin = maxMin / 63f;
        putShort(out, o, Float.floatToFloat16(d));
        putShort(out, o + 2, Float.floatToFloat16(dmin));
        d = Float.float16ToFloat(Float.floatToFloat16(d));
        dmin = Float.float16ToFloat(Float.floatToFloat16(dmin));
        int[] ls = new int[8];
        int[] lm = new int[8];
        for (int j = 0; j < 8; j++) {
            ls[j] = d > 0 ? Math.min(63, Math.round(scale[j] / d)) : 0;
            lm[j] = dmin > 0 ? Math.min(63, Math.round(min[j] / dmin)) : 0;
        }
        int s = o + 4;
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                out[s + j] = (byte) ls[j];
                out[s + j + 4] = (byte) lm[j];
            } else {
                out[s + j + 4] = (byte) ((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                out[s + j - 4] |= (byte) ((ls[j] >> 4) << 6);
                out[s + j] |= (byte) ((lm[j] >> 4) << 6);
            }
        }
        int[] q = new int[256];
        for (int j = 0; j < 8; j++) {
            float sd = d * ls[j];
            float sm = dmin * lm[j];
            for (int l = 0; l < 32; l++) {
                float v = x[xo + 32 * j + l];
                q[32 * j + l] = sd > 0 ? Math.max(0, Math.min(15, Math.round((v + sm) / sd))) : 0;
            }
        }
        for (int j = 0; j < 256; j += 64) {
            for (int l = 0; l < 32; l++) out[o + 16 + j / 2 + l] = (byte) (q[j + l] | (q[j + l + 32] << 4));
        }
    }

    static void q6_k(float[] x, int xo, byte[] out, int o) {
        float[] scale = new float[16];
        float maxAbs = 0;
        for (int j = 0; j < 16; j++) {
            float amax = 0;
            for (int l = 0; l < 16; l++) amax = Math.max(amax, Math.abs(x[xo + 16 * j + l]));
            scale[j] = amax / 31f;
            maxAbs = Math.max(maxAbs, scale[j]);
        }
        float d = maxAbs / 127f;
        putShort(out, o + 208, Float.floatToFloat16(d));
        d = Float.float16ToFloat(Float.floatToFloat16(d));
        int[] sc = new int[16];
        for (int j = 0; j < 16; j++) {
            sc[j] = d > 0 ? Math.min(127, Math.round(scale[j] / d)) : 0;
            out[o + 192 + j] = (byte) sc[j];
        }
        int[] q = new int[256];
        for (int j = 0; j < 16; j++) {
            float sd = d * sc[j];
            for (int l = 0; l < 16; l++) {
                int v = sd > 0 ? Math.round(x[xo + 16 * j + l] / sd) : 0;
                q[16 * j + l] = Math.max(-32, Math.min(31, v)) + 32;
            }
        }
        for (int h = 0; h < 2; h++) {
            int ql = o + 64 * h;
            int qh = o + 128 + 32 * h;
            int base = 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = q[base + l], q2 = q[base + l + 32], q3 = q[base + l + 64], q4 = q[base + l + 96];
                out[ql + l] = (byte) ((q1 & 0xF) | ((q3 & 0xF) << 4));
                out[ql + l + 32] = (byte) ((q2 & 0xF) | ((q4 & 0xF) << 4));
                out[qh + l] = (byte) ((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }

    private static void putShort(byte[] b, int o, short v) {
        b[o] = (byte) v;
        b[o + 1] = (byte) (v >> 8);
    }

    private static void putInt(byte[] b, int o, int v) {
        b[o] = (byte) v;
        b[o + 1] = (byte) (v >> 8);
        b[o + 2] = (byte) (v >> 16);
        b[o + 3] = (byte) (v >> 24);
    }
}
