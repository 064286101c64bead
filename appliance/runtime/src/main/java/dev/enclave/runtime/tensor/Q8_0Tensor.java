package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/** Q8_0: blocks of 32 values; {@code half d; int8 qs[32]}; value = qs[j] * d. */
public final class Q8_0Tensor extends BlockTensor {

    public Q8_0Tensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q8_0);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q8_0;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        for (int j = 0; j < 32; j++) {
            out[o + j] = i8(b + 2 + j) * d;
        }
    }
}
