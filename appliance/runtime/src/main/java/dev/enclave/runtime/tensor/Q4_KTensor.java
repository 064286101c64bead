package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * Q4_K: super-blocks of 256 = 8 sub-blocks of 32. Layout {@code half d; half dmin; uint8 scales[12];
 * uint8 qs[128]}: 6-bit scale and min per sub-block; value = d*scale*q - dmin*min with 4-bit q (low nibbles
 * for the first 32 of each 64, high nibbles for the next 32).
 */
public final class Q4_KTensor extends BlockTensor {

    public Q4_KTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q4_K);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q4_K;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        float min = half(b + 2);
        long q = b + 16;
        int y = o;
        int is = 0;
        for (int j = 0; j < 256; j += 64) {
            int sm1 = KQuant.scaleMin(data, b + 4, is);
            int sm2 = KQuant.scaleMin(data, b + 4, is + 1);
            float d1 = d * (sm1 & 0xFF);
            float m1 = min * (sm1 >>> 8);
            float d2 = d * (sm2 & 0xFF);
            float m2 = min * (sm2 >>> 8);
            for (int l = 0; l < 32; l++) out[y++] = d1 * (u8(q + l) & 0xF) - m1;
            for (int l = 0; l < 32; l++) out[y++] = d2 * (u8(q + l) >>> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}
