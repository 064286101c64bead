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
 * Q6_K repacked at load, a group of rows at a time (see {@link RowGroupTensor#R}), still at 6 bits per value, with Q6_K's own scales: an int8 scale per row
 * and 16 columns, a half-precision d per row and super-block of 256 (value = (d sc) (q - 32), as Q6_K decodes). 6.56
 * bits per weight, as in the file: the output matrix of a Llama 3 model (128256 rows) is a quarter of its weights,
 * and decoding one token reads all of it, so its bytes are decode time and resident memory.
 *
 * <p>Layout: rows in groups of R, columns in sub-blocks of 16. For group g and sub-block u, 12 lines of R bytes,
 * byte i of a line for row Rg + i, in 4 passes of 3 lines. Values are Q6_K's q - 32, signed 6-bit. Pass k holds
 * columns k, k + 4 and k + 8 in the top 6 bits of its 3 lines, and column k + 12 spread over their low 2 bits (bits
 * 0-1, 2-3, 4-5 in lines 1, 2, 3). Widened with sign extension, a line shifted right by 2 is its column's value: a
 * pass is 3 loads and 10 shifts and masks for 4 columns of R rows (nibble lines plus a line of high bits took 15,
 * and unsigned values a correction per sub-block).
 *
 * <p>Why it is exact in 16-bit lanes: a sum of 8 products (q - 32) * x is at most 8 * 32 * 127 = 32512 in magnitude,
 * so each sub-block is summed as two halves of 8 columns, widened to ints before they are added. No horizontal sums.
 * Kernels are written out without helpers (a call taking vectors past the inlining budget boxes them).
 */
public final class Q6RowGroupTensor extends Q6_KRowGroupTensor {

    /** Bytes per group and sub-block: 512 values at 6 bits. */
    private static final int LINES = 12 * R;

    private Q6RowGroupTensor(MemorySegment[] s, int rows, int cols) {
        super(s[0], s[1], s[2], rows, cols);
    }

    /** Repacks a Q6_K matrix of {@code rows} x {@code cols} into memory owned by {@code arena}, on every core. */
    public static Q6RowGroupTensor repack(Q6_KTensor src, int rows, int cols, Arena arena) {
        return new Q6RowGroupTensor(repack(src, rows, cols, arena, LINES, (out, base, lane, q, at) -> {
            for (int k = 0; k < 4; k++) {
                int o = base + k * 3 * R + lane;
                int d = q[at + k + 12]; // column k + 12's 6 bits ride in the low 2 bits of the others
                out[o] = (byte) (q[at + k] << 2 | d & 3);
                out[o + R] = (byte) (q[at + k + 4] << 2 | d >> 2 & 3);
                out[o + 2 * R] = (byte) (q[at + k + 8] << 2 | d >> 4 & 3);
            }
        }), rows, cols);
    }

    static Q6RowGroupTensor fromSegments(GGMLType source, MemorySegment[] s, int rows, int cols) {
        checkSegments(source, s, rows, cols, LINES);
        return new Q6RowGroupTensor(s, rows, cols);
    }

    @Override
    public float getFloat(long index) {
        int r = (int) (index / cols);
        int c = (int) (index % cols);
        long gu = (long) (r / R) * subs + c / 16;
        int lane = r % R;
        int j = c % 16;
        long at = gu * LINES + (j % 4) * 3L * R + lane; // column j is in pass j % 4, role j / 4
        int q;
        if (j < 12) {
            q = data.get(ValueLayout.JAVA_BYTE, at + (j / 4) * (long) R) >> 2;
        } else {
            int bits = data.get(ValueLayout.JAVA_BYTE, at) & 3 | (data.get(ValueLayout.JAVA_BYTE, at + R) & 3) << 2
                    | (data.get(ValueLayout.JAVA_BYTE, at + 2 * R) & 3) << 4;
            q = bits << 26 >> 26;
        }
        return scale(gu, lane) * q;
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
                long line = gu * LINES;
                ShortVector zs = ShortVector.zero(SHORTS);
                ShortVector l0 = zs, h0 = zs; // columns 0-7 and 8-15
                for (int k = 0; k < 4; k++) {
                    long at = line + k * 3 * R;
                    ShortVector w0 = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, at, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector w1 = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, at + R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector w2 = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, at + 2 * R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector q0 = w0.lanewise(VectorOperators.ASHR, 2);
                    ShortVector q4 = w1.lanewise(VectorOperators.ASHR, 2);
                    ShortVector q8 = w2.lanewise(VectorOperators.ASHR, 2);
                    ShortVector q12 = w0.and((short) 3).or(w1.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.LSHR, 12))
                            .or(w2.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 10));
                    int cj = c + k;
                    l0 = l0.add(q0.mul(xq[x0 + cj])).add(q4.mul(xq[x0 + cj + 4]));
                    h0 = h0.add(q8.mul(xq[x0 + cj + 8])).add(q12.mul(xq[x0 + cj + 12]));
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
                long line = gu * LINES;
                ShortVector zs = ShortVector.zero(SHORTS);
                ShortVector l0 = zs, h0 = zs, l1 = zs, h1 = zs, l2 = zs, h2 = zs, l3 = zs, h3 = zs;
                for (int k = 0; k < 4; k++) {
                    long at = line + k * 3 * R;
                    ShortVector w0 = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, at, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector w1 = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, at + R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector w2 = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, at + 2 * R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector q0 = w0.lanewise(VectorOperators.ASHR, 2);
                    ShortVector q4 = w1.lanewise(VectorOperators.ASHR, 2);
                    ShortVector q8 = w2.lanewise(VectorOperators.ASHR, 2);
                    ShortVector q12 = w0.and((short) 3).or(w1.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.LSHR, 12))
                            .or(w2.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 10));
                    int cj = c + k;
                    l0 = l0.add(q0.mul(xq[x0 + cj])).add(q4.mul(xq[x0 + cj + 4]));
                    h0 = h0.add(q8.mul(xq[x0 + cj + 8])).add(q12.mul(xq[x0 + cj + 12]));
                    l1 = l1.add(q0.mul(xq[x1 + cj])).add(q4.mul(xq[x1 + cj + 4]));
                    h1 = h1.add(q8.mul(xq[x1 + cj + 8])).add(q12.mul(xq[x1 + cj + 12]));
                    l2 = l2.add(q0.mul(xq[x2 + cj])).add(q4.mul(xq[x2 + cj + 4]));
                    h2 = h2.add(q8.mul(xq[x2 + cj + 8])).add(q12.mul(xq[x2 + cj + 12]));
                    l3 = l3.add(q0.mul(xq[x3 + cj])).add(q4.mul(xq[x3 + cj + 4]));
                    h3 = h3.add(q8.mul(xq[x3 + cj + 8])).add(q12.mul(xq[x3 + cj + 12]));
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
