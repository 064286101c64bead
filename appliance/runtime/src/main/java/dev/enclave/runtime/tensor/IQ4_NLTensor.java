package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;

/**
 * IQ4_NL: blocks of 32; {@code half d; uint8 qs[16]}; each nibble indexes a fixed non-linear table; value =
 * d * table[nibble], low nibbles for values 0..15, high nibbles for 16..31.
 */
public final class IQ4_NLTensor extends BlockTensor {

    static final byte[] VALUES = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    public IQ4_NLTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.IQ4_NL);
    }

    @Override
    public GGMLType type() {
        return GGMLType.IQ4_NL;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        for (int j = 0; j < 16; j++) {
            int q = u8(b + 2 + j);
            out[o + j] = d * VALUES[q & 0xF];
            out[o + j + 16] = d * VALUES[q >>> 4];
        }
    }
}
