package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/** Q4_1: blocks of 32; {@code half d; half m; uint8 qs[16]}; value = nibble * d + m (low nibbles first). */
public final class Q4_1Tensor extends BlockTensor {

    public Q4_1Tensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q4_1);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q4_1;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        float m = half(b + 2);
        for (int j = 0; j < 16; j++) {
            int q = u8(b + 4 + j);
            out[o + j] = (q & 0xF) * d + m;
            out[o + j + 16] = (q >>> 4) * d + m;
        }
    }
}
