package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * A lossless in-memory repacking of Q6_K for the matrix that decode reads in full every token (the output
 * projection, often the tied embedding): Q6_K's values are 6-bit integers with one scale per 16, so they fit int8
 * exactly, with the product d * scale precomputed as a float per 16 values. Decoding is then one widening and one
 * multiply per 16 values instead of a dozen bit operations; the price is 10 bits per weight instead of 6.56.
 * Every value equals the Q6_K original bit for bit.
 */
public final class Int8RowsTensor extends FloatTensor {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment scales; // one float per 16 values

    private Int8RowsTensor(MemorySegment values, MemorySegment scales, long size) {
        super(values, size);
        this.scales = scales;
    }

    /** Repacks a Q6_K tensor into memory owned by {@code arena}; one super-block at a time through small arrays. */
    public static Int8RowsTensor fromQ6_K(Q6_KTensor src, Arena arena) {
        long n = src.size();
        MemorySegment values = arena.allocate(n, 64);
        MemorySegment scales = arena.allocate(n / 16 * 4, 64);
        MemorySegment data = src.data();
        long superBlocks = n / 256;
        int chunk = 4096; // super-blocks per task: the tasks run on every core (this is on the way to the first token)
        java.util.stream.LongStream.range(0, (superBlocks + chunk - 1) / chunk).parallel().forEach(c -> {
            byte[] in = new byte[210];
            byte[] q = new byte[256];
            float[] sc = new float[16];
            for (long blk = c * chunk; blk < Math.min(superBlocks, (c + 1) * chunk); blk++) {
                repackSuperBlock(data, blk, in, q, sc);
                MemorySegment.copy(q, 0, values, ValueLayout.JAVA_BYTE, blk * 256, 256);
                MemorySegment.copy(sc, 0, scales, F32, blk * 64, 16);
            }
        });
        return new Int8RowsTensor(values, scales, n);
    }

    /** Super-block {@code blk} of a Q6_K tensor to 256 int8 values and 16 scales (d * scale), exactly. */
    static void repackSuperBlock(MemorySegment data, long blk, byte[] in, byte[] q, float[] sc) {
        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, blk * 210, in, 0, 210);
        float d = Float.float16ToFloat((short) ((in[208] & 0xFF) | (in[209] << 8)));
        for (int h = 0; h < 2; h++) {
            int ql = 64 * h, qh = 128 + 32 * h, o = 128 * h;
            for (int l = 0; l < 32; l++) {
                int hb = in[qh + l] & 0xFF;
                int l0 = in[ql + l] & 0xFF;
                int l1 = in[ql + l + 32] & 0xFF;
                q[o + l] = (byte) (((l0 & 0xF) | ((hb & 3) << 4)) - 32);
                q[o + l + 32] = (byte) (((l1 & 0xF) | (((hb >> 2) & 3) << 4)) - 32);
                q[o + l + 64] = (byte) (((l0 >> 4) | (((hb >> 4) & 3) << 4)) - 32);
                q[o + l + 96] = (byte) (((l1 >> 4) | (((hb >> 6) & 3) << 4)) - 32);
            }
            // Q6_K decodes as (d * scale) * q: keep that product so values stay bit-exact
            for (int s = 0; s < 8; s++) sc[8 * h + s] = d * in[192 + 8 * h + s];
        }
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q6_K; // same values as the Q6_K tensor it came from
    }

    @Override
    public float getFloat(long index) {
        return scales.getAtIndex(F32, index / 16) * data.get(ValueLayout.JAVA_BYTE, index);
    }

    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        if (!Kernels.WIDE || offset % 16 != 0 || n % 32 != 0) {
            float s = 0;
            for (int i = 0; i < n; i++) s += getFloat(offset + i) * x[xo + i];
            return s;
        }
        FloatVector a0 = FloatVector.zero(Kernels.F16L);
        FloatVector a1 = a0;
        for (int i = 0; i < n; i += 32) {
            long o = offset + i;
            FloatVector v0 = (FloatVector) ByteVector.fromMemorySegment(Kernels.B16L, data, o, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, Kernels.F16L, 0);
            FloatVector v1 = (FloatVector) ByteVector.fromMemorySegment(Kernels.B16L, data, o + 16, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, Kernels.F16L, 0);
            a0 = v0.mul(FloatVector.fromArray(Kernels.F16L, x, xo + i)).fma(FloatVector.broadcast(Kernels.F16L, scales.getAtIndex(F32, o / 16)), a0);
            a1 = v1.mul(FloatVector.fromArray(Kernels.F16L, x, xo + i + 16)).fma(FloatVector.broadcast(Kernels.F16L, scales.getAtIndex(F32, o / 16 + 1)), a1);
        }
        return a0.add(a1).reduceLanes(VectorOperators.ADD);
    }

    /** Four activation vectors at once: each group of 16 is widened and scaled once. */
    @Override
    public void dot4(long offset, float[] x, int x0, int x1, int x2, int x3, int n, float[] out, int o, int stride) {
        if (!Kernels.WIDE || offset % 16 != 0 || n % 16 != 0) {
            super.dot4(offset, x, x0, x1, x2, x3, n, out, o, stride);
            return;
        }
        FloatVector a0 = FloatVector.zero(Kernels.F16L), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < n; i += 16) {
            long p = offset + i;
            FloatVector w = ((FloatVector) ByteVector.fromMemorySegment(Kernels.B16L, data, p, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, Kernels.F16L, 0)).mul(scales.getAtIndex(F32, p / 16));
            a0 = w.fma(FloatVector.fromArray(Kernels.F16L, x, x0 + i), a0);
            a1 = w.fma(FloatVector.fromArray(Kernels.F16L, x, x1 + i), a1);
            a2 = w.fma(FloatVector.fromArray(Kernels.F16L, x, x2 + i), a2);
            a3 = w.fma(FloatVector.fromArray(Kernels.F16L, x, x3 + i), a3);
        }
        Kernels.store4(out, o, stride, a0, a1, a2, a3);
    }
}
