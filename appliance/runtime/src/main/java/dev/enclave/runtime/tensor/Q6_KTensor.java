package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * Q6_K: super-blocks of 256 = 16 sub-blocks of 16. Layout {@code uint8 ql[128]; uint8 qh[64]; int8 scales[16];
 * half d}: 4 low bits in ql, 2 high bits in qh; value = d * scale * (q - 32).
 */
public final class Q6_KTensor extends BlockTensor {

    public Q6_KTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q6_K);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q6_K;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b + 208);
        long ql = b;
        long qh = b + 128;
        long sc = b + 192;
        int y = o;
        for (int n = 0; n < 256; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int h = u8(qh + l);
                int q1 = ((u8(ql + l) & 0xF) | ((h & 3) << 4)) - 32;
                int q2 = ((u8(ql + l + 32) & 0xF) | (((h >>> 2) & 3) << 4)) - 32;
                int q3 = ((u8(ql + l) >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
                int q4 = ((u8(ql + l + 32) >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
                out[y + l] = d * i8(sc + is) * q1;
                out[y + l + 32] = d * i8(sc + is + 2) * q2;
                out[y + l + 64] = d * i8(sc + is + 4) * q3;
                out[y + l + 96] = d * i8(sc + is + 6) * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}
