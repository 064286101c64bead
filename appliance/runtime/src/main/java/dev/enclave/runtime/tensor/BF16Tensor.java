package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** bfloat16: the upper 16 bits of an IEEE float32, 2 bytes each, little-endian. */
public final class BF16Tensor extends FloatTensor {

    private static final ValueLayout.OfShort LAYOUT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public BF16Tensor(MemorySegment data, long size) {
        super(data, size);
    }

    @Override
    public GGMLType type() {
        return GGMLType.BF16;
    }

    @Override
    public float getFloat(long index) {
        return Float.intBitsToFloat(data.getAtIndex(LAYOUT, index) << 16);
    }

    @Override
    public float dot(long offset, float[] that, int thatOffset, int n) {
        float s0 = 0, s1 = 0;
        int i = 0;
        for (; i + 1 < n; i += 2) {
            s0 += getFloat(offset + i) * that[thatOffset + i];
            s1 += getFloat(offset + i + 1) * that[thatOffset + i + 1];
        }
        float sum = s0 + s1;
        for (; i < n; i++) sum += getFloat(offset + i) * that[thatOffset + i];
        return sum;
    }
}
