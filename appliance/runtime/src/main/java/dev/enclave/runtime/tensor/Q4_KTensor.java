package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Q4_K: super-blocks of 256 = 8 sub-blocks of 32. Layout {@code half d; half dmin; uint8 scales[12];
 * uint8 qs[128]}: 6-bit scale and min per sub-block; value = d*scale*q - dmin*min with 4-bit q (low nibbles
 * for the first 32 of each 64, high nibbles for the next 32).
 */
public final class Q4_KTensor extends BlockTensor {

    public Q4_KTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q4_K);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q4_K;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b);
        float min = half(b + 2);
        long q = b + 16;
        int y = o;
        int is = 0;
        for (int j = 0; j < 256; j += 64) {
            int sm1 = KQuant.scaleMin(data, b + 4, is);
            int sm2 = KQuant.scaleMin(data, b + 4, is + 1);
            float d1 = d * (sm1 & 0xFF);
            float m1 = min * (sm1 >>> 8);
            float d2 = d * (sm2 & 0xFF);
            float m2 = min * (sm2 >>> 8);
            for (int l = 0; l < 32; l++) out[y++] = d1 * (u8(q + l) & 0xF) - m1;
            for (int l = 0; l < 32; l++) out[y++] = d2 * (u8(q + l) >>> 4) - m2;
            q += 32;
            is += 2;
        }
    }

    /**
     * Fused dequantize-and-dot, 16 float lanes: per 32-value sub-block, d*sc*dot(q, x) - dmin*m*sum(x), so the
     * min term costs one extra vector add rather than one per value.
     */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        if (!Kernels.WIDE || offset % 256 != 0 || n % 256 != 0) return super.dot(offset, x, xo, n);
        FloatVector acc = FloatVector.zero(Kernels.F16L);
        long b = offset / 256 * 144;
        for (int i = 0; i < n; i += 256, b += 144) {
            float d = half(b);
            float min = half(b + 2);
            long q = b + 16;
            for (int j = 0; j < 4; j++, q += 32) {
                int sm1 = KQuant.scaleMin(data, b + 4, 2 * j);
                int sm2 = KQuant.scaleMin(data, b + 4, 2 * j + 1);
                int xi = xo + i + 64 * j;
                FloatVector x0 = FloatVector.fromArray(Kernels.F16L, x, xi);
                FloatVector x1 = FloatVector.fromArray(Kernels.F16L, x, xi + 16);
                FloatVector x2 = FloatVector.fromArray(Kernels.F16L, x, xi + 32);
                FloatVector x3 = FloatVector.fromArray(Kernels.F16L, x, xi + 48);
                ByteVector qa = ByteVector.fromMemorySegment(Kernels.B16L, data, q, ByteOrder.LITTLE_ENDIAN);
                ByteVector qb = ByteVector.fromMemorySegment(Kernels.B16L, data, q + 16, ByteOrder.LITTLE_ENDIAN);
                FloatVector lo = ((FloatVector) qa.and((byte) 0xF).convertShape(VectorOperators.B2F, Kernels.F16L, 0)).mul(x0);
                lo = ((FloatVector) qb.and((byte) 0xF).convertShape(VectorOperators.B2F, Kernels.F16L, 0)).fma(x1, lo);
                FloatVector hi = ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.B2F, Kernels.F16L, 0)).mul(x2);
                hi = ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.B2F, Kernels.F16L, 0)).fma(x3, hi);
                acc = lo.fma(FloatVector.broadcast(Kernels.F16L, d * (sm1 & 0xFF)), acc);
                acc = hi.fma(FloatVector.broadcast(Kernels.F16L, d * (sm2 & 0xFF)), acc);
                acc = x0.add(x1).fma(FloatVector.broadcast(Kernels.F16L, -min * (sm1 >>> 8)), acc);
                acc = x2.add(x3).fma(FloatVector.broadcast(Kernels.F16L, -min * (sm2 >>> 8)), acc);
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
