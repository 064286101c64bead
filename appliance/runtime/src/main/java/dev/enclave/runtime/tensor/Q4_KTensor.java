package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
        if (Kernels.WIDE) {
            float d = half(b);
            float min = half(b + 2);
            long q = b + 16;
            for (int j = 0; j < 4; j++, q += 32) {
                int sm1 = KQuant.scaleMin(data, b + 4, 2 * j);
                int sm2 = KQuant.scaleMin(data, b + 4, 2 * j + 1);
                // same float operations as the scalar path: (d * sc) * q - (dmin * m)
                FloatVector d1 = FloatVector.broadcast(Kernels.F16L, d * (sm1 & 0xFF));
                FloatVector m1 = FloatVector.broadcast(Kernels.F16L, min * (sm1 >>> 8));
                FloatVector d2 = FloatVector.broadcast(Kernels.F16L, d * (sm2 & 0xFF));
                FloatVector m2 = FloatVector.broadcast(Kernels.F16L, min * (sm2 >>> 8));
                for (int h = 0; h < 2; h++) {
                    IntVector v = (IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, q + 16 * h, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, Kernels.I16L, 0);
                    ((FloatVector) v.and(0xF).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(d1).sub(m1)
                            .intoArray(out, o + 64 * j + 16 * h);
                    ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).and(0xF).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(d2).sub(m2)
                            .intoArray(out, o + 64 * j + 32 + 16 * h);
                }
            }
            return;
        }
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

    private static final java.lang.foreign.ValueLayout.OfLong LONG =
            java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Fused dequantize-and-dot, 16 float lanes: per 32-value sub-block, d*sc*dot(q, x) - dmin*m*sum(x), so the
     * min term costs one vector add rather than one per value. The 12 packed scale bytes are read once per
     * super-block as a long and an int; nibbles are widened to 32-bit lanes before any shifting.
     */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        if (!Kernels.WIDE || offset % 256 != 0 || n % 256 != 0) return super.dot(offset, x, xo, n);
        FloatVector acc0 = FloatVector.zero(Kernels.F16L);
        FloatVector acc1 = acc0;
        FloatVector mins = acc0;
        long b = offset / 256 * 144;
        for (int i = 0; i < n; i += 256, b += 144) {
            float d = half(b);
            float dmin = half(b + 2);
            long s03 = data.get(LONG, b + 4);   // scale bytes 0..7
            int s811 = data.get(INT, b + 12);   // scale bytes 8..11
            long q = b + 16;
            for (int j = 0; j < 4; j++, q += 32) {
                int is = 2 * j;
                int sc1, m1, sc2, m2;
                if (is < 4) {
                    sc1 = byteAt(s03, is) & 63;
                    m1 = byteAt(s03, is + 4) & 63;
                    sc2 = byteAt(s03, is + 1) & 63;
                    m2 = byteAt(s03, is + 5) & 63;
                } else {
                    int e1 = (s811 >>> (8 * (is - 4))) & 0xFF;
                    int e2 = (s811 >>> (8 * (is - 3))) & 0xFF;
                    sc1 = (e1 & 0xF) | ((byteAt(s03, is - 4) >>> 6) << 4);
                    m1 = (e1 >>> 4) | ((byteAt(s03, is) >>> 6) << 4);
                    sc2 = (e2 & 0xF) | ((byteAt(s03, is - 3) >>> 6) << 4);
                    m2 = (e2 >>> 4) | ((byteAt(s03, is + 1) >>> 6) << 4);
                }
                int xi = xo + i + 64 * j;
                FloatVector x0 = FloatVector.fromArray(Kernels.F16L, x, xi);
                FloatVector x1 = FloatVector.fromArray(Kernels.F16L, x, xi + 16);
                FloatVector x2 = FloatVector.fromArray(Kernels.F16L, x, xi + 32);
                FloatVector x3 = FloatVector.fromArray(Kernels.F16L, x, xi + 48);
                IntVector qa = (IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, q, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2I, Kernels.I16L, 0);
                IntVector qb = (IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, q + 16, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2I, Kernels.I16L, 0);
                FloatVector lo = ((FloatVector) qa.and(0xF).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(x0);
                lo = ((FloatVector) qb.and(0xF).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).fma(x1, lo);
                FloatVector hi = ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).and(0xF).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(x2);
                hi = ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).and(0xF).convertShape(VectorOperators.I2F, Kernels.F16L, 0)).fma(x3, hi);
                acc0 = lo.fma(FloatVector.broadcast(Kernels.F16L, d * sc1), acc0);
                acc1 = hi.fma(FloatVector.broadcast(Kernels.F16L, d * sc2), acc1);
                mins = x0.add(x1).fma(FloatVector.broadcast(Kernels.F16L, dmin * m1), mins);
                mins = x2.add(x3).fma(FloatVector.broadcast(Kernels.F16L, dmin * m2), mins);
            }
        }
        return acc0.add(acc1).sub(mins).reduceLanes(VectorOperators.ADD);
    }

    private static int byteAt(long bytes, int k) {
        return (int) (bytes >>> (8 * k)) & 0xFF;
    }
}
