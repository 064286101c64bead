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
 * Q6_K repacked at load, a group of rows at a time (see {@link RowGroupTensor#R}: 32 on AVX-512), as int8 values (Q6_K's values are 6-bit integers, so int8 holds them
 * exactly) with Q6_K's own scales: an int8 scale per row and 16 columns, a half-precision d per row and super-block of
 * 256 (value = (d sc) q, as Q6_K decodes). 8.56 bits per weight against the file's 6.56, for a decode that is two
 * widening loads instead of a dozen bit operations.
 *
 * <p>Layout: rows in groups of R, columns in sub-blocks of 16. For group g and sub-block u, 16 lines of R bytes:
 * line j holds column 16u + j of the R rows. With the rows across the lanes, the integer kernel multiplies a line
 * widened to shorts by the broadcast int8 activation and accumulates in 16-bit lanes: 8 products of |q| <= 32 and
 * |x| <= 127 fit (8 * 32 * 127 = 32512), so each sub-block sums two 8-column halves, widened to ints. No horizontal
 * sums. Kernels are written out without helpers (a call taking vectors past the inlining budget boxes them).
 */
public final class Int8RowGroupTensor extends Q6_KRowGroupTensor {

    /** Bytes per group and sub-block: 16 lines of R values. */
    private static final int LINES = 16 * R;

    private Int8RowGroupTensor(MemorySegment[] s, int rows, int cols) {
        super(s[0], s[1], s[2], rows, cols);
    }

    /** Repacks a Q6_K matrix of {@code rows} x {@code cols} into memory owned by {@code arena}, on every core. */
    public static Int8RowGroupTensor repack(Q6_KTensor src, int rows, int cols, Arena arena) {
        return new Int8RowGroupTensor(repack(src, rows, cols, arena, LINES, (out, base, lane, q, at) -> {
            for (int j = 0; j < 16; j++) out[base + j * R + lane] = q[at + j];
        }), rows, cols);
    }

    static Int8RowGroupTensor fromSegments(GGMLType source, MemorySegment[] s, int rows, int cols) {
        checkSegments(source, s, rows, cols, LINES);
        return new Int8RowGroupTensor(s, rows, cols);
    }

    @Override
    public float getFloat(long index) {
        int r = (int) (index / cols);
        int c = (int) (index % cols);
        long gu = (long) (r / R) * subs + c / 16;
        int lane = r % R;
        return scale(gu, lane) * data.get(ValueLayout.JAVA_BYTE, gu * LINES + (c % 16) * (long) R + lane);
    }

    @Override
    public void multiply(Q8Activations a, int t, int from, int to, float[] out, int o) {
        short[] xq = a.q;
        float[] xd = a.d;
        int x0 = t * cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(FLOATS);
            FloatVector a00 = z, a01 = z;
            FloatVector sd0 = z, sd1 = z; // the super-block's d per row
            long gu = (long) g * subs;
            for (int u = 0; u < subs; u++, gu++) {
                int c = u * 16;
                long line = gu * 16 * R;
                ShortVector zs = ShortVector.zero(SHORTS);
                ShortVector l0 = zs, h0 = zs;
                // 16 products of |q| <= 32, |x| <= 127 can overflow 16 bits; 8 cannot: two halves, widened after
                for (int j = 0; j < 8; j++, line += R) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector v = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line + 8 * R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    l0 = l0.add(w.mul(xq[x0 + c + j]));
                    h0 = h0.add(v.mul(xq[x0 + c + j + 8]));
                }
                if (u % 16 == 0) {
                    ShortVector hd = ShortVector.fromMemorySegment(SHORTS, scales, gu / 16 * 2 * R, ByteOrder.LITTLE_ENDIAN);
                    IntVector nd0i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 0);
                    FloatVector nd0 = nd0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                            .reinterpretAsInts().or(nd0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                    IntVector nd1i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 1);
                    FloatVector nd1 = nd1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                            .reinterpretAsInts().or(nd1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                    sd0 = nd0;
                    sd1 = nd1;
                }
                // scale = d * sc, as Q6_K decodes
                ByteVector sc = ByteVector.fromMemorySegment(BYTES, subScales, gu * R, ByteOrder.LITTLE_ENDIAN);
                FloatVector sc0 = ((FloatVector) sc.convertShape(VectorOperators.B2I, INTS, 0).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd0);
                FloatVector sc1 = ((FloatVector) sc.convertShape(VectorOperators.B2I, INTS, 1).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd1);
                a00 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, INTS, 0)).add((IntVector) h0.convertShape(VectorOperators.S2I, INTS, 0))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc0.mul(xd[(x0 + c) / 32]), a00);
                a01 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, INTS, 1)).add((IntVector) h0.convertShape(VectorOperators.S2I, INTS, 1))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc1.mul(xd[(x0 + c) / 32]), a01);
            }
            a00.intoArray(out, o + g * R);
            a01.intoArray(out, o + g * R + R / 2);
        }
    }

    @Override
    public void multiply4(Q8Activations a, int t, int from, int to, float[] out, int o, int stride) {
        short[] xq = a.q;
        float[] xd = a.d;
        int x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(FLOATS);
            FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
            FloatVector sd0 = z, sd1 = z; // the super-block's d per row
            long gu = (long) g * subs;
            for (int u = 0; u < subs; u++, gu++) {
                int c = u * 16;
                long line = gu * 16 * R;
                ShortVector zs = ShortVector.zero(SHORTS);
                ShortVector l0 = zs, h0 = zs, l1 = zs, h1 = zs, l2 = zs, h2 = zs, l3 = zs, h3 = zs;
                // 16 products of |q| <= 32, |x| <= 127 can overflow 16 bits; 8 cannot: two halves, widened after
                for (int j = 0; j < 8; j++, line += R) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector v = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line + 8 * R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    l0 = l0.add(w.mul(xq[x0 + c + j]));
                    h0 = h0.add(v.mul(xq[x0 + c + j + 8]));
                    l1 = l1.add(w.mul(xq[x1 + c + j]));
                    h1 = h1.add(v.mul(xq[x1 + c + j + 8]));
                    l2 = l2.add(w.mul(xq[x2 + c + j]));
                    h2 = h2.add(v.mul(xq[x2 + c + j + 8]));
                    l3 = l3.add(w.mul(xq[x3 + c + j]));
                    h3 = h3.add(v.mul(xq[x3 + c + j + 8]));
                }
                if (u % 16 == 0) {
                    ShortVector hd = ShortVector.fromMemorySegment(SHORTS, scales, gu / 16 * 2 * R, ByteOrder.LITTLE_ENDIAN);
                    IntVector nd0i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 0);
                    FloatVector nd0 = nd0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                            .reinterpretAsInts().or(nd0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                    IntVector nd1i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 1);
                    FloatVector nd1 = nd1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                            .reinterpretAsInts().or(nd1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                    sd0 = nd0;
                    sd1 = nd1;
                }
                // scale = d * sc, as Q6_K decodes
                ByteVector sc = ByteVector.fromMemorySegment(BYTES, subScales, gu * R, ByteOrder.LITTLE_ENDIAN);
                FloatVector sc0 = ((FloatVector) sc.convertShape(VectorOperators.B2I, INTS, 0).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd0);
                FloatVector sc1 = ((FloatVector) sc.convertShape(VectorOperators.B2I, INTS, 1).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd1);
                a00 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, INTS, 0)).add((IntVector) h0.convertShape(VectorOperators.S2I, INTS, 0))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc0.mul(xd[(x0 + c) / 32]), a00);
                a01 = ((FloatVector) ((IntVector) l0.convertShape(VectorOperators.S2I, INTS, 1)).add((IntVector) h0.convertShape(VectorOperators.S2I, INTS, 1))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc1.mul(xd[(x0 + c) / 32]), a01);
                a10 = ((FloatVector) ((IntVector) l1.convertShape(VectorOperators.S2I, INTS, 0)).add((IntVector) h1.convertShape(VectorOperators.S2I, INTS, 0))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc0.mul(xd[(x1 + c) / 32]), a10);
                a11 = ((FloatVector) ((IntVector) l1.convertShape(VectorOperators.S2I, INTS, 1)).add((IntVector) h1.convertShape(VectorOperators.S2I, INTS, 1))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc1.mul(xd[(x1 + c) / 32]), a11);
                a20 = ((FloatVector) ((IntVector) l2.convertShape(VectorOperators.S2I, INTS, 0)).add((IntVector) h2.convertShape(VectorOperators.S2I, INTS, 0))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc0.mul(xd[(x2 + c) / 32]), a20);
                a21 = ((FloatVector) ((IntVector) l2.convertShape(VectorOperators.S2I, INTS, 1)).add((IntVector) h2.convertShape(VectorOperators.S2I, INTS, 1))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc1.mul(xd[(x2 + c) / 32]), a21);
                a30 = ((FloatVector) ((IntVector) l3.convertShape(VectorOperators.S2I, INTS, 0)).add((IntVector) h3.convertShape(VectorOperators.S2I, INTS, 0))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc0.mul(xd[(x3 + c) / 32]), a30);
                a31 = ((FloatVector) ((IntVector) l3.convertShape(VectorOperators.S2I, INTS, 1)).add((IntVector) h3.convertShape(VectorOperators.S2I, INTS, 1))
                        .convertShape(VectorOperators.I2F, FLOATS, 0)).fma(sc1.mul(xd[(x3 + c) / 32]), a31);
            }
            int r = o + g * R;
            a00.intoArray(out, r + 0 * stride);
            a01.intoArray(out, r + 0 * stride + R / 2);
            a10.intoArray(out, r + 1 * stride);
            a11.intoArray(out, r + 1 * stride + R / 2);
            a20.intoArray(out, r + 2 * stride);
            a21.intoArray(out, r + 2 * stride + R / 2);
            a30.intoArray(out, r + 3 * stride);
            a31.intoArray(out, r + 3 * stride + R / 2);
        }
    }
}
