package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * Q4_0: blocks of 32 values; {@code half d; uint8 qs[16]}; value j = ((qs[j] & 0xF) - 8) * d and value j + 16 =
 * ((qs[j] >> 4) - 8) * d.
 */
public final class Q4_0Tensor extends BlockTensor {

    public Q4_0Tensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q4_0);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q4_0;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        for (int j = 0; j < 16; j++) {
            int q = u8(b + 2 + j);
            out[o + j] = ((q & 0xF) - 8) * d;
            out[o + j + 16] = ((q >>> 4) - 8) * d;
        }
    }
}
