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
        int[] scales = unpackScales(b + 96);
        long q = b + 32;
        long hm = b;
        int m = 1;
        int is = 0;
        int y = o;
        for (int n = 0; n < 256; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                float dl = dAll * (scales[is++] - 32);
                for (int l = 0; l < 16; l++) {
                    out[y++] = dl * (((u8(q + l) >>> shift) & 3) - ((u8(hm + l) & m) != 0 ? 0 : 4));
                }
                dl = dAll * (scales[is++] - 32);
                for (int l = 0; l < 16; l++) {
                    out[y++] = dl * (((u8(q + l + 16) >>> shift) & 3) - ((u8(hm + l + 16) & m) != 0 ? 0 : 4));
                }
                shift += 2;
                m <<= 1;
            }
            q += 32;
        }
    }

    /** The 16 6-bit scales: low 4 bits from bytes 0..7, high 2 bits from bytes 8..11 (ggml's kmask shuffle). */
    private int[] unpackScales(long s) {
        int a0 = data.get(INT, s);
        int a1 = data.get(INT, s + 4);
        int tmp = data.get(INT, s + 8);
        final int kmask1 = 0x03030303;
        final int kmask2 = 0x0f0f0f0f;
        int[] aux = {
                (a0 & kmask2) | (((tmp) & kmask1) << 4),
                (a1 & kmask2) | (((tmp >>> 2) & kmask1) << 4),
                ((a0 >>> 4) & kmask2) | (((tmp >>> 4) & kmask1) << 4),
                ((a1 >>> 4) & kmask2) | (((tmp >>> 6) & kmask1) << 4)};
        int[] scales = new int[16];
        for (int i = 0; i < 16; i++) {
            scales[i] = (byte) (aux[i / 4] >>> (8 * (i % 4))); // little-endian bytes, read as int8
        }
        return scales;
    }
}
