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

/**
 * Q8_0 repacked at load, a group of rows at a time (see {@link RowGroupTensor#R}: 32 on AVX-512, 16 on AVX2, 8 on
 * NEON), for integer products with {@link Q8Activations}. Same values and the same size as the file's blocks.
 *
 * <p>Layout: rows in groups of R, columns in blocks of 32. For group g and block k, 32 lines of R bytes: line j
 * holds column 32k + j of the R rows, rows 0 .. R/2 - 1 in its even bytes and the rest in its odd ones
 * ({@link RowGroupTensor#interleaved}). Scales: Q8_0's half-precision d per (group, block, row), in row order, as stored.
 *
 * <p>Why: the float route widens every weight to a float (two conversions per 16 values) and needs a float
 * activation per weight; here a line widened to shorts multiplies the broadcast int8 activation in 16-bit lanes.
 * Two products of |q| <= 128 and |x| <= 127 fit a short (2 * 128 * 127 = 32512), so columns go in pairs, each pair's
 * sum widened to ints. The widening is two shifts of the pair sums read as ints (the interleaved rows make the low
 * and high halves of each int the two halves of the group), not a lane-crossing sign extension: that alone made
 * 128-token prompts ~30% faster (pp128 49-54 -> 66-70 tokens/s, back to back). Kernels are written out without
 * helpers (a call taking vectors past the inlining budget boxes them).
 *
 * <p>Measured on the 1B Q8_0 file (2 threads, AVX-512, tokens/s): decoding 16.5-17.9 on the float route, 22-24 here;
 * prompts 64-67 on the float route, 66-70 here. (A float route over this layout, each line widened to floats once for
 * 8 tokens, decoded at 20.5; mixing routes by batch size would make a token's result depend on its batch, which the
 * scheduler promises it does not.)
 */
public final class Q8RowGroupTensor extends RowGroupTensor {

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Bytes per group and block: 32 lines of R values. */
    private static final int LINES = 32 * R;

    private final int blocks; // per row
    /** Half d per (group, block, row). */
    private final MemorySegment scales;

    private Q8RowGroupTensor(MemorySegment values, MemorySegment scales, int rows, int cols) {
        super(values, rows, cols);
        this.blocks = cols / 32;
        this.scales = scales;
    }

    /**
     * Whether models should take this route on this CPU: with 512-bit vectors (AVX-512). Measured on the 1B Q8_0 file
     * (`bench -t 2 -p 32 -n 16 -r 2`, pp / tg tokens/s, float route then this one): 256-bit 28.7 / 16.0 then
     * 26.1 / 16.1 (no gain); 128-bit 30.0 / 9.1 then 18.6 / 10.7 (prompts much slower: narrow vectors pay more for
     * widening the sums). Narrower CPUs keep Q8_0 on the float route; the kernels still work there (and are tested).
     */
    public static final boolean PREFERRED = AVAILABLE && R >= 32;

    /** Whether a tensor of this type and shape can be repacked, and the CPU has the vectors the kernels use. */
    public static boolean supports(FloatTensor t, long rows, long cols) {
        return AVAILABLE && t instanceof Q8_0Tensor && rows % R == 0 && cols % 32 == 0
                && rows <= Integer.MAX_VALUE && cols <= Integer.MAX_VALUE;
    }

    /** Repacks a Q8_0 matrix of {@code rows} x {@code cols} into memory owned by {@code arena}, on every core. */
    public static Q8RowGroupTensor repack(FloatTensor src, int rows, int cols, Arena arena) {
        if (!supports(src, rows, cols)) throw new IllegalArgumentException("cannot repack " + src.type() + " " + rows + "x" + cols);
        long n = (long) rows * cols;
        MemorySegment values = arena.allocate(n, 64);
        MemorySegment scales = arena.allocate(n / 32 * 2, 64);
        MemorySegment in = src.data();
        int blocks = cols / 32;
        int rowBytes = blocks * 34;
        repackInParallel(rows / R, () -> {
            byte[] out = new byte[blocks * LINES];
            byte[] halves = new byte[blocks * 2 * R];
            byte[] group = new byte[R * rowBytes];
            return g -> {
                // the group's R source rows in one bulk read, then transposed from the array
                MemorySegment.copy(in, ValueLayout.JAVA_BYTE, (long) g * R * rowBytes, group, 0, group.length);
                for (int lane = 0; lane < R; lane++) {
                    for (int b = 0; b < blocks; b++) {
                        int at = lane * rowBytes + b * 34;
                        checkHalf(group[at], group[at + 1], (long) g * R + lane);
                        halves[b * 2 * R + 2 * lane] = group[at];
                        halves[b * 2 * R + 2 * lane + 1] = group[at + 1];
                        int o = b * LINES + interleaved(lane);
                        for (int j = 0; j < 32; j++) out[o + j * R] = group[at + 2 + j];
                    }
                }
                MemorySegment.copy(out, 0, values, ValueLayout.JAVA_BYTE, (long) g * out.length, out.length);
                MemorySegment.copy(halves, 0, scales, ValueLayout.JAVA_BYTE, (long) g * halves.length, halves.length);
            };
        });
        return new Q8RowGroupTensor(values, scales, rows, cols);
    }

    @Override
    public GGMLType type() {
        return GGMLType.Q8_0; // same values as the tensor it came from
    }

    @Override
    public MemorySegment[] segments() {
        return new MemorySegment[] {data, scales};
    }

    static Q8RowGroupTensor fromSegments(GGMLType source, MemorySegment[] s, int rows, int cols) {
        if (source != GGMLType.Q8_0 || s.length != 2 || rows % R != 0 || cols % 32 != 0) {
            throw new IllegalArgumentException("not a repacked Q8_0 layout: " + source + " " + rows + "x" + cols);
        }
        long n = (long) rows * cols;
        checkSize(s[0], n, "values");
        checkSize(s[1], n / 32 * 2, "scales");
        return new Q8RowGroupTensor(s[0], s[1], rows, cols);
    }

    @Override
    public float getFloat(long index) {
        int r = (int) (index / cols);
        int c = (int) (index % cols);
        long gb = (long) (r / R) * blocks + c / 32;
        int lane = r % R;
        short d = scales.get(HALF, (gb * R + lane) * 2); // a constant layout: withOrder allocates
        return Float.float16ToFloat(d) * data.get(ValueLayout.JAVA_BYTE, gb * LINES + (c % 32) * (long) R + interleaved(lane));
    }

    @Override
    public void multiply(Q8Activations a, int t, int from, int to, float[] out, int o) {
        short[] xq = a.q;
        float[] xd = a.d;
        int x0 = t * cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(FLOATS);
            FloatVector a00 = z, a01 = z;
            long gb = (long) g * blocks;
            for (int b = 0; b < blocks; b++, gb++) {
                long line = gb * LINES;
                int c = x0 + b * 32;
                IntVector zi = IntVector.zero(INTS);
                IntVector i0 = zi, i1 = zi;
                for (int j = 0; j < 32; j += 2, line += 2 * R) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector v = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line + R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector p = w.mul(xq[c + j]).add(v.mul(xq[c + j + 1])); // |p| <= 32512: exact
                    i0 = i0.add(p.reinterpretAsInts().lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                    i1 = i1.add(p.reinterpretAsInts().lanewise(VectorOperators.ASHR, 16));
                }
                ShortVector h = ShortVector.fromMemorySegment(SHORTS, scales, gb * 2 * R, ByteOrder.LITTLE_ENDIAN);
                IntVector d0i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector d0 = d0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector d1i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector d1 = d1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                float xs = xd[c / 32];
                a00 = ((FloatVector) i0.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d0.mul(xs), a00);
                a01 = ((FloatVector) i1.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d1.mul(xs), a01);
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
            long gb = (long) g * blocks;
            for (int b = 0; b < blocks; b++, gb++) {
                long line = gb * LINES;
                int c = b * 32;
                IntVector zi = IntVector.zero(INTS);
                IntVector i00 = zi, i01 = zi, i10 = zi, i11 = zi, i20 = zi, i21 = zi, i30 = zi, i31 = zi;
                for (int j = 0; j < 32; j += 2, line += 2 * R) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    ShortVector v = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line + R, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2S, SHORTS, 0);
                    int cj = c + j;
                    ShortVector p0 = w.mul(xq[x0 + cj]).add(v.mul(xq[x0 + cj + 1])); // |p| <= 32512: exact
                    i00 = i00.add(p0.reinterpretAsInts().lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                    i01 = i01.add(p0.reinterpretAsInts().lanewise(VectorOperators.ASHR, 16));
                    ShortVector p1 = w.mul(xq[x1 + cj]).add(v.mul(xq[x1 + cj + 1]));
                    i10 = i10.add(p1.reinterpretAsInts().lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                    i11 = i11.add(p1.reinterpretAsInts().lanewise(VectorOperators.ASHR, 16));
                    ShortVector p2 = w.mul(xq[x2 + cj]).add(v.mul(xq[x2 + cj + 1]));
                    i20 = i20.add(p2.reinterpretAsInts().lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                    i21 = i21.add(p2.reinterpretAsInts().lanewise(VectorOperators.ASHR, 16));
                    ShortVector p3 = w.mul(xq[x3 + cj]).add(v.mul(xq[x3 + cj + 1]));
                    i30 = i30.add(p3.reinterpretAsInts().lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                    i31 = i31.add(p3.reinterpretAsInts().lanewise(VectorOperators.ASHR, 16));
                }
                ShortVector h = ShortVector.fromMemorySegment(SHORTS, scales, gb * 2 * R, ByteOrder.LITTLE_ENDIAN);
                IntVector d0i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector d0 = d0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector d1i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector d1 = d1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                float s0 = xd[(x0 + c) / 32], s1 = xd[(x1 + c) / 32], s2 = xd[(x2 + c) / 32], s3 = xd[(x3 + c) / 32];
                a00 = ((FloatVector) i00.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d0.mul(s0), a00);
                a01 = ((FloatVector) i01.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d1.mul(s0), a01);
                a10 = ((FloatVector) i10.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d0.mul(s1), a10);
                a11 = ((FloatVector) i11.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d1.mul(s1), a11);
                a20 = ((FloatVector) i20.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d0.mul(s2), a20);
                a21 = ((FloatVector) i21.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d1.mul(s2), a21);
                a30 = ((FloatVector) i30.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d0.mul(s3), a30);
                a31 = ((FloatVector) i31.convertShape(VectorOperators.I2F, FLOATS, 0)).fma(d1.mul(s3), a31);
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
