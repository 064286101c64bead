package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * Q5_K: like Q4_K with a fifth bit per value. Layout {@code half d; half dmin; uint8 scales[12]; uint8 qh[32];
 * uint8 qs[128]}; the fifth bit of the k-th group of 32 values is bit k of qh[l].
 */
public final class Q5_KTensor extends BlockTensor {

    public Q5_KTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q5_K);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q5_K;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        float min = half(b + 2);
        long qh = b + 16;
        long ql = b + 48;
        int y = o;
        int is = 0;
        int u1 = 1;
        int u2 = 2;
        for (int j = 0; j < 256; j += 64) {
            int sm1 = KQuant.scaleMin(data, b + 4, is);
            int sm2 = KQuant.scaleMin(data, b + 4, is + 1);
            float d1 = d * (sm1 & 0xFF);
            float m1 = min * (sm1 >>> 8);
            float d2 = d * (sm2 & 0xFF);
            float m2 = min * (sm2 >>> 8);
            for (int l = 0; l < 32; l++) out[y++] = d1 * ((u8(ql + l) & 0xF) + ((u8(qh + l) & u1) != 0 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) out[y++] = d2 * ((u8(ql + l) >>> 4) + ((u8(qh + l) & u2) != 0 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}
