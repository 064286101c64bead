package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * Q3_K: super-blocks of 256 = 16 sub-blocks of 16. Layout {@code uint8 hmask[32]; uint8 qs[64];
 * uint8 scales[12]; half d}: 2 low bits in qs, the third bit in hmask (set means +0, clear means -4), 16 signed
 * 6-bit scales packed in 12 bytes (offset by 32); value = d * (scale - 32) * q.
 */
public final class Q3_KTensor extends BlockTensor {

    public Q3_KTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q3_K);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q3_K;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float dAll = half(b + 108);
        long sc = b + 96;
        long q = b + 32;
        long hm = b;
        int m = 1;
        int is = 0;
        int y = o;
        for (int n = 0; n < 256; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                float dl = dAll * (scale(sc, is++) - 32);
                for (int l = 0; l < 16; l++) {
                    out[y++] = dl * (((u8(q + l) >>> shift) & 3) - ((u8(hm + l) & m) != 0 ? 0 : 4));
                }
                dl = dAll * (scale(sc, is++) - 32);
                for (int l = 0; l < 16; l++) {
                    out[y++] = dl * (((u8(q + l + 16) >>> shift) & 3) - ((u8(hm + l + 16) & m) != 0 ? 0 : 4));
                }
                shift += 2;
                m <<= 1;
            }
            q += 32;
        }
    }

    /**
     * The i-th (0..15) signed 6-bit scale of the 12 packed bytes at {@code s}: low 4 bits from byte i (i < 8) or the
     * high nibble of byte i - 8, high 2 bits from byte 8 + i % 4 at bit 2 * (i / 4) — ggml's kmask shuffle, per index.
     */
    private int scale(long s, int i) {
        int low = i < 8 ? u8(s + i) & 0xF : u8(s + i - 8) >>> 4;
        int high = (u8(s + 8 + i % 4) >>> (2 * (i / 4))) & 3;
        return (byte) (low | (high << 4));
    }
}
