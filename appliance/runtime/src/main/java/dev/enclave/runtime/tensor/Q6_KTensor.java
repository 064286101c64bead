package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Q6_K: super-blocks of 256 = 16 sub-blocks of 16. Layout {@code uint8 ql[128]; uint8 qh[64]; int8 scales[16];
 * half d}: 4 low bits in ql, 2 high bits in qh; value = d * scale * (q - 32).
 */
public final class Q6_KTensor extends BlockTensor {

    public Q6_KTensor(MemorySegment data, long size) {
        super(data, size, GGMLType.Q6_K);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q6_K;
    }

    @Override
    protected void dequantizeBlock(long b, float[] out, int o) {
        float d = half(b + 208);
        long ql = b;
        long qh = b + 128;
        long sc = b + 192;
        int y = o;
        for (int n = 0; n < 256; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int h = u8(qh + l);
                int q1 = ((u8(ql + l) & 0xF) | ((h & 3) << 4)) - 32;
                int q2 = ((u8(ql + l + 32) & 0xF) | (((h >>> 2) & 3) << 4)) - 32;
                int q3 = ((u8(ql + l) >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
                int q4 = ((u8(ql + l + 32) >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
                out[y + l] = d * i8(sc + is) * q1;
                out[y + l + 32] = d * i8(sc + is + 2) * q2;
                out[y + l + 64] = d * i8(sc + is + 4) * q3;
                out[y + l + 96] = d * i8(sc + is + 6) * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }

    /** Fused dequantize-and-dot, 16 float lanes: each 16-lane group shares one scale. */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        if (!Kernels.WIDE || offset % 256 != 0 || n % 256 != 0) return super.dot(offset, x, xo, n);
        FloatVector a0 = FloatVector.zero(Kernels.F16L);
        FloatVector a1 = a0, a2 = a0, a3 = a0;
        long b = offset / 256 * 210;
        for (int i = 0; i < n; i += 256, b += 210) {
            float d = half(b + 208);
            for (int h = 0; h < 2; h++) {
                long ql = b + 64 * h;
                long qh = b + 128 + 32 * h;
                long sc = b + 192 + 8 * h;
                int xb = xo + i + 128 * h;
                for (int c = 0; c < 2; c++) {
                    // widen to ints once; all bit work in 32-bit lanes (x86 has no byte shifts)
                    IntVector l0 = ((IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, ql + 16 * c, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, Kernels.I16L, 0)).and(0xFF);
                    IntVector l1 = ((IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, ql + 32 + 16 * c, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, Kernels.I16L, 0)).and(0xFF);
                    IntVector hb = ((IntVector) ByteVector.fromMemorySegment(Kernels.B16L, data, qh + 16 * c, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, Kernels.I16L, 0)).and(0xFF);
                    IntVector q1 = l0.and(0xF).or(hb.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                    IntVector q2 = l1.and(0xF).or(hb.and(0xC).lanewise(VectorOperators.LSHL, 2)).sub(32);
                    IntVector q3 = l0.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30)).sub(32);
                    IntVector q4 = l1.lanewise(VectorOperators.LSHR, 4).or(hb.and(0xC0).lanewise(VectorOperators.LSHR, 2)).sub(32);
                    int xc = xb + 16 * c;
                    a0 = ((FloatVector) q1.convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(FloatVector.fromArray(Kernels.F16L, x, xc))
                            .fma(FloatVector.broadcast(Kernels.F16L, d * i8(sc + c)), a0);
                    a1 = ((FloatVector) q2.convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(FloatVector.fromArray(Kernels.F16L, x, xc + 32))
                            .fma(FloatVector.broadcast(Kernels.F16L, d * i8(sc + c + 2)), a1);
                    a2 = ((FloatVector) q3.convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(FloatVector.fromArray(Kernels.F16L, x, xc + 64))
                            .fma(FloatVector.broadcast(Kernels.F16L, d * i8(sc + c + 4)), a2);
                    a3 = ((FloatVector) q4.convertShape(VectorOperators.I2F, Kernels.F16L, 0)).mul(FloatVector.fromArray(Kernels.F16L, x, xc + 96))
                            .fma(FloatVector.broadcast(Kernels.F16L, d * i8(sc + c + 6)), a3);
                }
            }
        }
        FloatVector acc = a0.add(a1).add(a2.add(a3));
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
