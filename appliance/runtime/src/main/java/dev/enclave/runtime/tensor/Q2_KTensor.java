package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * Q2_K: super-blocks of 256 = 16 sub-blocks of 16. Layout {@code uint8 scales[16]; uint8 qs[64]; half d;
 * half dmin}: each scale byte holds a 4-bit scale (low) and 4-bit min (high); value = d*scale*q - dmin*min with
 * 2-bit q, four 2-bit planes per 32 bytes of qs.
 */
public final class Q2_KTensor extends BlockTensor {

    public Q2_KTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q2_K);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q2_K;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b + 80);
        float min = half(b + 82);
        long q = b + 16;
        int is = 0;
        int y = o;
        for (int n = 0; n < 256; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                int sc = u8(b + is++);
                float dl = d * (sc & 0xF);
                float ml = min * (sc >>> 4);
                for (int l = 0; l < 16; l++) out[y++] = dl * ((u8(q + l) >>> shift) & 3) - ml;
                sc = u8(b + is++);
                dl = d * (sc & 0xF);
                ml = min * (sc >>> 4);
                for (int l = 0; l < 16; l++) out[y++] = dl * ((u8(q + l + 16) >>> shift) & 3) - ml;
                shift += 2;
            }
            q += 32;
        }
    }
}
