package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/** IEEE float32 values, 4 bytes each, little-endian. */
public final class F32Tensor extends FloatTensor {

    private static final ValueLayout.OfFloat LAYOUT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public F32Tensor(MemorySegment data, long size) {
        super(data, size);
    }

    @Override
    public GGMLType type() {
        return GGMLType.F32;
    }

    @Override
    public float getFloat(long index) {
        return data.getAtIndex(LAYOUT, index);
    }

    @Override
    public float dot(long offset, float[] that, int thatOffset, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        int upper = F_SPECIES.loopBound(n);
        for (; i < upper; i += F_SPECIES.length()) {
            FloatVector a = FloatVector.fromMemorySegment(F_SPECIES, data, (offset + i) * Float.BYTES, ByteOrder.LITTLE_ENDIAN);
            FloatVector b = FloatVector.fromArray(F_SPECIES, that, thatOffset + i);
            acc = a.fma(b, acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += getFloat(offset + i) * that[thatOffset + i];
        }
        return sum;
    }

    @Override
    public void copyTo(long offset, float[] out, int outOffset, int n) {
        MemorySegment.copy(data, LAYOUT, offset * Float.BYTES, out, outOffset, n);
    }
}
