package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

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
        if (Kernels.WIDE) {
            FloatVector d = FloatVector.broadcast(Kernels.F16L, half(b));
            ((FloatVector) ByteVector.fromMemorySegment(Kernels.B16L, data, b + 2, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, Kernels.F16L, 0)).mul(d).intoArray(out, o);
            ((FloatVector) ByteVector.fromMemorySegment(Kernels.B16L, data, b + 18, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, Kernels.F16L, 0)).mul(d).intoArray(out, o + 16);
            return;
        }
        float d = half(b);
        for (int j = 0; j < 32; j++) {
            out[o + j] = i8(b + 2 + j) * d;
        }
    }

    /** Fused dequantize-and-dot, 16 float lanes (AVX-512), else the CPU's own width (AVX2, NEON). */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        if (offset % 32 != 0 || n % 32 != 0) return super.dot(offset, x, xo, n);
        if (!Kernels.WIDE) return Kernels.NATIVE ? narrowDot(offset, x, xo, n) : super.dot(offset, x, xo, n);
        FloatVector acc = FloatVector.zero(Kernels.F16L);
        long b = offset / 32 * 34;
        for (int i = 0; i < n; i += 32, b += 34) {
            ByteVector q0 = ByteVector.fromMemorySegment(Kernels.B16L, data, b + 2, ByteOrder.LITTLE_ENDIAN);
            ByteVector q1 = ByteVector.fromMemorySegment(Kernels.B16L, data, b + 18, ByteOrder.LITTLE_ENDIAN);
            FloatVector f0 = (FloatVector) q0.convertShape(VectorOperators.B2F, Kernels.F16L, 0);
            FloatVector f1 = (FloatVector) q1.convertShape(VectorOperators.B2F, Kernels.F16L, 0);
            FloatVector s = f0.mul(FloatVector.fromArray(Kernels.F16L, x, xo + i));
            s = f1.fma(FloatVector.fromArray(Kernels.F16L, x, xo + i + 16), s);
            acc = s.fma(FloatVector.broadcast(Kernels.F16L, half(b)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** The same at 8 float lanes (AVX2) or 4 (NEON: each 8-byte load widens to two vectors). */
    private float narrowDot(long offset, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(Kernels.FP);
        int lanes = Kernels.FP.length();
        long b = offset / 32 * 34;
        for (int i = 0; i < n; i += 32, b += 34) {
            FloatVector s = FloatVector.zero(Kernels.FP);
            for (int j = 0; j < 32; j += 8) {
                ByteVector q = ByteVector.fromMemorySegment(Kernels.BP, data, b + 2 + j, ByteOrder.LITTLE_ENDIAN);
                s = ((FloatVector) q.convertShape(VectorOperators.B2F, Kernels.FP, 0)).fma(FloatVector.fromArray(Kernels.FP, x, xo + i + j), s);
                if (Kernels.BP_PARTS == 2) {
                    s = ((FloatVector) q.convertShape(VectorOperators.B2F, Kernels.FP, 1)).fma(FloatVector.fromArray(Kernels.FP, x, xo + i + j + lanes), s);
                }
            }
            acc = s.fma(FloatVector.broadcast(Kernels.FP, half(b)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** Four activation vectors at once: each block is widened once and used four times. */
    @Override
    public void dot4(long offset, float[] x, int x0, int x1, int x2, int x3, int n, float[] out, int o, int stride) {
        if (!Kernels.WIDE || offset % 32 != 0 || n % 32 != 0) {
            super.dot4(offset, x, x0, x1, x2, x3, n, out, o, stride);
            return;
        }
        FloatVector a0 = FloatVector.zero(Kernels.F16L), a1 = a0, a2 = a0, a3 = a0;
        long b = offset / 32 * 34;
        for (int i = 0; i < n; i += 32, b += 34) {
            FloatVector d = FloatVector.broadcast(Kernels.F16L, half(b));
            FloatVector lo = ((FloatVector) ByteVector.fromMemorySegment(Kernels.B16L, data, b + 2, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, Kernels.F16L, 0)).mul(d);
            FloatVector hi = ((FloatVector) ByteVector.fromMemorySegment(Kernels.B16L, data, b + 18, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, Kernels.F16L, 0)).mul(d);
            a0 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x0 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x0 + i), a0));
            a1 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x1 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x1 + i), a1));
            a2 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x2 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x2 + i), a2));
            a3 = hi.fma(FloatVector.fromArray(Kernels.F16L, x, x3 + i + 16), lo.fma(FloatVector.fromArray(Kernels.F16L, x, x3 + i), a3));
        }
        Kernels.store4(out, o, stride, a0, a1, a2, a3);
    }
}
