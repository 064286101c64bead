package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/** Q5_1: blocks of 32; {@code half d; half m; uint8 qh[4]; uint8 qs[16]}; value = 5-bit q * d + m. */
public final class Q5_1Tensor extends BlockTensor {

    public Q5_1Tensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q5_1);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q5_1;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        float m = half(b + 2);
        int qh = data.get(INT, b + 4);
        for (int j = 0; j < 16; j++) {
            int q = u8(b + 8 + j);
            int h0 = ((qh >>> j) << 4) & 0x10;
            int h1 = (qh >>> (j + 12)) & 0x10;
            out[o + j] = ((q & 0xF) | h0) * d + m;
            out[o + j + 16] = ((q >>> 4) | h1) * d + m;
        }
    }
}
