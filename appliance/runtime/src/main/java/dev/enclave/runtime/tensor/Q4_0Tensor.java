package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
        if (Kernels.WIDE) {
            IntVector q = (IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, b + 2, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2I, Kernels.I16L, 0);
            FloatVector d = FloatVector.broadcast(Kernels.F16L, half(b));
            ((FloatVector) q.and(0xF).sub(8).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(d).intoArray(out, o);
            ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).sub(8).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(d).intoArray(out, o + 16);
            return;
        }
        float d = half(b);
        for (int j = 0; j < 16; j++) {
            int q = u8(b + 2 + j);
            out[o + j] = ((q & 0xF) - 8) * d;
            out[o + j + 16] = ((q >>> 4) - 8) * d;
        }
    }

    /**
     * Fused dequantize-and-dot, 16 float lanes (AVX-512): nibbles widened straight to floats; two blocks per
     * iteration into two accumulators, so consecutive FMAs do not wait on each other.
     */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        if (!Kernels.WIDE || offset % 32 != 0 || n % 32 != 0) return super.dot(offset, x, xo, n);
        FloatVector acc0 = FloatVector.zero(Kernels.F16L);
        FloatVector acc1 = FloatVector.zero(Kernels.F16L);
        long b = offset / 32 * 18;
        int i = 0;
        for (; i + 64 <= n; i += 64, b += 36) {
            acc0 = block(b, x, xo + i, acc0);
            acc1 = block(b + 18, x, xo + i + 32, acc1);
        }
        if (i < n) acc0 = block(b, x, xo + i, acc0);
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private FloatVector block(long b, float[] x, int xi, FloatVector acc) {
        // widen the 16 packed bytes to ints once; nibbles come out with native 32-bit ops (x86 has no byte shifts)
        IntVector q = (IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, b + 2, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.B2I, Kernels.I16L, 0);
        FloatVector lo = (FloatVector) q.and(0xF).sub(8).convertShape(VectorOperators.I2F, Kernels.F16L, 0);
        FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).sub(8).convertShape(VectorOperators.I2F, Kernels.F16L, 0);
        FloatVector s = lo.mul(FloatVector.fromArray(Kernels.F16L, x, xi));
        s = hi.fma(FloatVector.fromArray(Kernels.F16L, x, xi + 16), s);
        return s.fma(FloatVector.broadcast(Kernels.F16L, half(b)), acc);
    }

    /** Four activation vectors at once: each block's nibbles are decoded once and used four times. */
    @Override
    public void dot4(long offset, float[] x, int x0, int x1, int x2, int x3, int n, float[] out, int o, int stride) {
        if (!Kernels.WIDE || offset % 32 != 0 || n % 32 != 0) {
            super.dot4(offset, x, x0, x1, x2, x3, n, out, o, stride);
            return;
        }
        FloatVector a0 = FloatVector.zero(Kernels.F16L), a1 = a0, a2 = a0, a3 = a0;
        long b = offset / 32 * 18;
        for (int i = 0; i < n; i += 32, b += 18) {
            IntVector q = (IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, b + 2, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2I, Kernels.I16L, 0);
            FloatVector d = FloatVector.broadcast(Kernels.F16L, half(b));
            FloatVector lo = ((FloatVector) q.and(0xF).sub(8).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(d);
            FloatVector hi = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).sub(8).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(d);
            a0 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x0 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x0 + i), a0));
            a1 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x1 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x1 + i), a1));
            a2 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x2 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x2 + i), a2));
            a3 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x3 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x3 + i), a3));
        }
        Kernels.store4(out, o, stride, a0, a1, a2, a3);
    }
}
