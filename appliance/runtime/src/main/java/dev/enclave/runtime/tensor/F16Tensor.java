package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** IEEE half-precision values, 2 bytes each, little-endian. */
public final class F16Tensor extends FloatTensor {

    private static final ValueLayout.OfShort LAYOUT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public F16Tensor(MemorySegment data, long size) {
        super(data, size);
    }

    @Override
    public GGMLType type() {
        return GGMLType.F16;
    }

    @Override
    public float getFloat(long index) {
        return Float.float16ToFloat(data.getAtIndex(LAYOUT, index));
    }

    @Override
    public float dot(long offset, float[] that, int thatOffset, int n) {
        // Four partial sums keep the dependency chain short; the Vector API route lands with the speed issue.
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            long o = offset + i;
            s0 += Float.float16ToFloat(data.getAtIndex(LAYOUT, o)) * that[thatOffset + i];
            s1 += Float.float16ToFloat(data.getAtIndex(LAYOUT, o + 1)) * that[thatOffset + i + 1];
            s2 += Float.float16ToFloat(data.getAtIndex(LAYOUT, o + 2)) * that[thatOffset + i + 2];
            s3 += Float.float16ToFloat(data.getAtIndex(LAYOUT, o + 3)) * that[thatOffset + i + 3];
        }
        float sum = (s0 + s1) + (s2 + s3);
        for (; i < n; i++) {
            sum += getFloat(offset + i) * that[thatOffset + i];
        }
        return sum;
    }
}
