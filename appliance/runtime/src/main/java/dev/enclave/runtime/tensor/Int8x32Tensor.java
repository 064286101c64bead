package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q6_K repacked at load, 32 rows at a time, as int8 values with a float scale per row and 16 columns (Q6_K's values
 * are 6-bit integers with one scale per 16, so this holds them exactly; {@link Int8RowsTensor} is the same repacking
 * row by row, for the float route).
 *
 * <p>Layout: rows in groups of 32, columns in sub-blocks of 16. For group g and sub-block u, 16 lines of 32 bytes:
 * line j holds column 16u + j of the 32 rows; beside it 32 float scales. With the rows across the lanes, the integer
 * kernel multiplies a line widened to shorts by the broadcast int8 activation and accumulates in 16-bit lanes: 8
 * products of |q| <= 32 and |x| <= 127 fit (8 * 32 * 127 = 32512), so each sub-block sums two 8-column halves,
 * widened to ints. No horizontal sums, half the instructions per weight of the float route.
 */
public final class Int8x32Tensor extends RowGroupTensor {

    static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    static final VectorSpecies<Integer> I16 = IntVector.SPECIES_512;
    static final VectorSpecies<Float> F16 = FloatVector.SPECIES_512;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int subs; // 16-column sub-blocks per row
    private final MemorySegment scales;

    private Int8x32Tensor(MemorySegment values, MemorySegment scales, int rows, int cols) {
        super(values, rows, cols);
        this.subs = cols / 16;
        this.scales = scales;
    }

    public static boolean supports(FloatTensor t, long rows, long cols) {
        return Kernels.WIDE && t instanceof Q6_KTensor && rows % 32 == 0 && cols % 256 == 0 && rows <= Integer.MAX_VALUE && cols <= Integer.MAX_VALUE;
    }

    /** Repacks a Q6_K matrix of {@code rows} x {@code cols} into memory owned by {@code arena}, on every core. */
    public static Int8x32Tensor repack(Q6_KTensor src, int rows, int cols, Arena arena) {
        if (!supports(src, rows, cols)) throw new IllegalArgumentException("cannot repack Q6_K " + rows + "x" + cols);
        long n = (long) rows * cols;
        MemorySegment values = arena.allocate(n, 64);
        MemorySegment scales = arena.allocate(n / 16 * 4, 64);
        MemorySegment in = src.data();
        int subs = cols / 16;
        int superBlocks = cols / 256;
        repackInParallel(rows / 32, () -> {
            byte[] raw = new byte[210];
            byte[] q = new byte[256];
            float[] sc = new float[16];
            byte[] out = new byte[subs * 512];
            float[] os = new float[subs * 32];
            return g -> {
                for (int lane = 0; lane < 32; lane++) {
                    long row = (long) g * 32 + lane;
                    for (int s = 0; s < superBlocks; s++) {
                        Int8RowsTensor.repackSuperBlock(in, row * superBlocks + s, raw, q, sc);
                        for (int v = 0; v < 16; v++) {
                            int u = s * 16 + v;
                            os[u * 32 + lane] = sc[v];
                            for (int j = 0; j < 16; j++) out[u * 512 + j * 32 + lane] = q[v * 16 + j];
                        }
                    }
                }
                MemorySegment.copy(out, 0, values, ValueLayout.JAVA_BYTE, (long) g * subs * 512, out.length);
                MemorySegment.copy(os, 0, scales, F32, (long) g * subs * 128, os.length);
            };
        });
        return new Int8x32Tensor(values, scales, rows, cols);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q6_K; // same values as the Q6_K tensor it came from
    }

    @Override
    public float getFloat(long index) {
        int r = (int) (index / cols);
        int c = (int) (index % cols);
        long gu = (long) (r / 32) * subs + c / 16;
        int lane = r % 32;
        return scales.get(F32, (gu * 32 + lane) * 4) * data.get(ValueLayout.JAVA_BYTE, gu * 512 + (c % 16) * 32L + lane);
    }

    // Kernels are written out, without helpers: past the JIT's inlining budget a call taking vectors boxes them.

    @Override
    public void multiply(Q8Activations a, int t, int from, int to, float[] out, int o) {
        short[] xq = a.q;
        float[] xd = a.d;
        int x0 = t * cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(F16);
            FloatVector a00 = z, a01 = z;
            long gu = (long) g * subs;
            for (int u = 0; u < subs; u++, gu++) {
                int c = u * 16;
                long line = gu * 512;
                ShortVector zs = ShortVector.zero(S32);
                ShortVector l0 = zs, h0 = zs;
                // 16 products of |q| <= 32, |x| <= 127 can overflow 16 bits; 8 cannot: two halves, widened after
                for (int j = 0; j < 8; j++, line += 32) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(B32, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, S32, 0);
                    ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B32, data, line + 256, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, S32, 0);
                    l0 = l0.add(w.mul(xq[x0 + c + j]));
                    h0 = h0.add(v.mul(xq[x0 + c + j + 8]));
                }
                FloatVector sc0 = FloatVector.fromMemorySegment(F16, scales, gu * 128, ByteOrder.LITTLE_ENDIAN);
                FloatVector sc1 = FloatVector.fromMemorySegment(F16, scales, gu * 128 + 64, ByteOrder.LITTLE_ENDIAN);
                a00 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, I16, 0)).add((IntVector) h0.convertShape(VectorOperators.S2I, I16, 0))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc0.mul(xd[(x0 + c) / 32]), a00);
                a01 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, I16, 1)).add((IntVector) h0.convertShape(VectorOperators.S2I, I16, 1))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc1.mul(xd[(x0 + c) / 32]), a01);
            }
            a00.intoArray(out, o + g * 32);
            a01.intoArray(out, o + g * 32 + 16);
        }
    }

    @Override
    public void multiply4(Q8Activations a, int t, int from, int to, float[] out, int o, int stride) {
        short[] xq = a.q;
        float[] xd = a.d;
        int x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(F16);
            FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
            long gu = (long) g * subs;
            for (int u = 0; u < subs; u++, gu++) {
                int c = u * 16;
                long line = gu * 512;
                ShortVector zs = ShortVector.zero(S32);
                ShortVector l0 = zs, h0 = zs, l1 = zs, h1 = zs, l2 = zs, h2 = zs, l3 = zs, h3 = zs;
                // 16 products of |q| <= 32, |x| <= 127 can overflow 16 bits; 8 cannot: two halves, widened after
                for (int j = 0; j < 8; j++, line += 32) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(B32, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, S32, 0);
                    ShortVector v = (ShortVector) ByteVector.fromMemorySegment(B32, data, line + 256, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, S32, 0);
                    l0 = l0.add(w.mul(xq[x0 + c + j]));
                    h0 = h0.add(v.mul(xq[x0 + c + j + 8]));
                    l1 = l1.add(w.mul(xq[x1 + c + j]));
                    h1 = h1.add(v.mul(xq[x1 + c + j + 8]));
                    l2 = l2.add(w.mul(xq[x2 + c + j]));
                    h2 = h2.add(v.mul(xq[x2 + c + j + 8]));
                    l3 = l3.add(w.mul(xq[x3 + c + j]));
                    h3 = h3.add(v.mul(xq[x3 + c + j + 8]));
                }
                FloatVector sc0 = FloatVector.fromMemorySegment(F16, scales, gu * 128, ByteOrder.LITTLE_ENDIAN);
                FloatVector sc1 = FloatVector.fromMemorySegment(F16, scales, gu * 128 + 64, ByteOrder.LITTLE_ENDIAN);
                a00 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, I16, 0)).add((IntVector) h0.convertShape(VectorOperators.S2I, I16, 0))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc0.mul(xd[(x0 + c) / 32]), a00);
                a01 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, I16, 1)).add((IntVector) h0.convertShape(VectorOperators.S2I, I16, 1))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc1.mul(xd[(x0 + c) / 32]), a01);
                a10 = ((FloatVector) ((IntVector) l1.convertShape(VectorOperators.S2I, I16, 0)).add((IntVector) h1.convertShape(VectorOperators.S2I, I16, 0))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc0.mul(xd[(x1 + c) / 32]), a10);
                a11 = ((FloatVector) ((IntVector) l1.convertShape(VectorOperators.S2I, I16, 1)).add((IntVector) h1.convertShape(VectorOperators.S2I, I16, 1))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc1.mul(xd[(x1 + c) / 32]), a11);
                a20 = ((FloatVector) ((IntVector) l2.convertShape(VectorOperators.S2I, I16, 0)).add((IntVector) h2.convertShape(VectorOperators.S2I, I16, 0))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc0.mul(xd[(x2 + c) / 32]), a20);
                a21 = ((FloatVector) ((IntVector) l2.convertShape(VectorOperators.S2I, I16, 1)).add((IntVector) h2.convertShape(VectorOperators.S2I, I16, 1))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc1.mul(xd[(x2 + c) / 32]), a21);
                a30 = ((FloatVector) ((IntVector) l3.convertShape(VectorOperators.S2I, I16, 0)).add((IntVector) h3.convertShape(VectorOperators.S2I, I16, 0))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc0.mul(xd[(x3 + c) / 32]), a30);
                a31 = ((FloatVector) ((IntVector) l3.convertShape(VectorOperators.S2I, I16, 1)).add((IntVector) h3.convertShape(VectorOperators.S2I, I16, 1))
                        .convertShape(VectorOperators.I2F, F16, 0)).fma(sc1.mul(xd[(x3 + c) / 32]), a31);
            }
            int r = o + g * 32;
            a00.intoArray(out, r + 0 * stride);
            a01.intoArray(out, r + 0 * stride + 16);
            a10.intoArray(out, r + 1 * stride);
            a11.intoArray(out, r + 1 * stride + 16);
            a20.intoArray(out, r + 2 * stride);
            a21.intoArray(out, r + 2 * stride + 16);
            a30.intoArray(out, r + 3 * stride);
            a31.intoArray(out, r + 3 * stride + 16);
        }
    }

    @Override
    public void multiplyFloat8(float[] x, int xOff, int xStride, int from, int to, float[] out, int o, int stride) {
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(F16);
            FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z, a40 = z, a41 = z, a50 = z, a51 = z, a60 = z, a61 = z, a70 = z, a71 = z;
            long gu = (long) g * subs;
            for (int u = 0; u < subs; u++, gu++) {
                FloatVector sc0 = FloatVector.fromMemorySegment(F16, scales, gu * 128, ByteOrder.LITTLE_ENDIAN);
                FloatVector sc1 = FloatVector.fromMemorySegment(F16, scales, gu * 128 + 64, ByteOrder.LITTLE_ENDIAN);
                long line = gu * 512;
                int c = xOff + u * 16;
                for (int j = 0; j < 16; j++, line += 32) {
                    FloatVector w0 = ((FloatVector) ByteVector.fromMemorySegment(B16, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2F, F16, 0)).mul(sc0);
                    FloatVector w1 = ((FloatVector) ByteVector.fromMemorySegment(B16, data, line + 16, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2F, F16, 0)).mul(sc1);
                    int xi = c + j;
                    FloatVector v;
                    v = FloatVector.broadcast(F16, x[xi + 0 * xStride]);
                    a00 = w0.fma(v, a00);
                    a01 = w1.fma(v, a01);
                    v = FloatVector.broadcast(F16, x[xi + 1 * xStride]);
                    a10 = w0.fma(v, a10);
                    a11 = w1.fma(v, a11);
                    v = FloatVector.broadcast(F16, x[xi + 2 * xStride]);
                    a20 = w0.fma(v, a20);
                    a21 = w1.fma(v, a21);
                    v = FloatVector.broadcast(F16, x[xi + 3 * xStride]);
                    a30 = w0.fma(v, a30);
                    a31 = w1.fma(v, a31);
                    v = FloatVector.broadcast(F16, x[xi + 4 * xStride]);
                    a40 = w0.fma(v, a40);
                    a41 = w1.fma(v, a41);
                    v = FloatVector.broadcast(F16, x[xi + 5 * xStride]);
                    a50 = w0.fma(v, a50);
                    a51 = w1.fma(v, a51);
                    v = FloatVector.broadcast(F16, x[xi + 6 * xStride]);
                    a60 = w0.fma(v, a60);
                    a61 = w1.fma(v, a61);
                    v = FloatVector.broadcast(F16, x[xi + 7 * xStride]);
                    a70 = w0.fma(v, a70);
                    a71 = w1.fma(v, a71);
                }
            }
            int r = o + g * 32; // stores written out: a helper taking 16 vectors would not be inlined into this big loop
            a00.intoArray(out, r + 0 * stride);
            a01.intoArray(out, r + 0 * stride + 16);
            a10.intoArray(out, r + 1 * stride);
            a11.intoArray(out, r + 1 * stride + 16);
            a20.intoArray(out, r + 2 * stride);
            a21.intoArray(out, r + 2 * stride + 16);
            a30.intoArray(out, r + 3 * stride);
            a31.intoArray(out, r + 3 * stride + 16);
            a40.intoArray(out, r + 4 * stride);
            a41.intoArray(out, r + 4 * stride + 16);
            a50.intoArray(out, r + 5 * stride);
            a51.intoArray(out, r + 5 * stride + 16);
            a60.intoArray(out, r + 6 * stride);
            a61.intoArray(out, r + 6 * stride + 16);
            a70.intoArray(out, r + 7 * stride);
            a71.intoArray(out, r + 7 * stride + 16);
        }
    }
}
