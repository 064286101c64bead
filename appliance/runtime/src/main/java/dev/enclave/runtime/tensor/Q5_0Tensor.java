package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * Q5_0: blocks of 32; {@code half d; uint8 qh[4]; uint8 qs[16]}. The fifth bit of value j is bit j of the 32-bit
 * qh; value = (5-bit q - 16) * d, low nibbles for values 0..15, high nibbles for 16..31.
 */
public final class Q5_0Tensor extends BlockTensor {

    public Q5_0Tensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q5_0);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q5_0;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        int qh = data.get(INT, b + 2);
        for (int j = 0; j < 16; j++) {
            int q = u8(b + 6 + j);
            int h0 = ((qh >>> j) << 4) & 0x10;
            int h1 = (qh >>> (j + 12)) & 0x10;
            out[o + j] = (((q & 0xF) | h0) - 16) * d;
            out[o + j + 16] = (((q >>> 4) | h1) - 16) * d;
        }
    }
}
