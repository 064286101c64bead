package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

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

    /**
     * A vector of halves at a time (16 lanes on AVX-512, 8 on AVX2, 4 on NEON): widened to ints, exponent and
     * mantissa moved into float position with the sign, scaled by 2^112 (exact for normal and subnormal halves).
     * Infinity and NaN halves do not occur in weights.
     */
    @Override
    public float dot(long offset, float[] that, int thatOffset, int n) {
        if (!Kernels.NATIVE) return scalarDot(offset, that, thatOffset, n);
        FloatVector acc = FloatVector.zero(Kernels.FP);
        int lanes = Kernels.FP.length();
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            ShortVector h = ShortVector.fromMemorySegment(Kernels.SP, data, (offset + i) * 2, ByteOrder.LITTLE_ENDIAN);
            // sign-extended half shifted left 13: bit 31 is the sign, bits 13-27 exponent and mantissa, bits 28-30
            // copies of the sign (cleared by the mask); the float times 2^112 is the half's value, sign included
            FloatVector f = ((IntVector) h.convertShape(VectorOperators.S2I, Kernels.IP, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            acc = f.fma(FloatVector.fromArray(Kernels.FP, that, thatOffset + i), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        return sum + scalarDot(offset + i, that, thatOffset + i, n - i);
    }

    private float scalarDot(long offset, float[] that, int thatOffset, int n) {
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
