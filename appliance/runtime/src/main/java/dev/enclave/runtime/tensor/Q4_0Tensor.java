package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

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

    /** Fused dequantize-and-dot, 16 float lanes (AVX-512): nibbles widened straight to floats, one FMA chain. */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        if (!Kernels.WIDE || offset % 32 != 0 || n % 32 != 0) return super.dot(offset, x, xo, n);
        FloatVector acc = FloatVector.zero(Kernels.F16L);
        long b = offset / 32 * 18;
        for (int i = 0; i < n; i += 32, b += 18) {
            ByteVector q = ByteVector.fromMemorySegment(Kernels.B16L, data, b + 2, ByteOrder.LITTLE_ENDIAN);
            FloatVector lo = (FloatVector) q.and((byte) 0xF).sub((byte) 8).convertShape(VectorOperators.B2F, Kernels.F16L, 0);
            FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub((byte) 8).convertShape(VectorOperators.B2F, Kernels.F16L, 0);
            FloatVector s = lo.mul(FloatVector.fromArray(Kernels.F16L, x, xo + i));
            s = hi.fma(FloatVector.fromArray(Kernels.F16L, x, xo + i + 16), s);
            acc = s.fma(FloatVector.broadcast(Kernels.F16L, half(b)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
