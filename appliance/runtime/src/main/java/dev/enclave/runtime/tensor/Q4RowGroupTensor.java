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
 * 4-bit weights (Q4_0 or Q4_K) repacked at load, a group of rows at a time (see {@link RowGroupTensor#R}: 32 on AVX-512, 16 on AVX2, 8 on NEON), for integer products with
 * {@link Q8Activations} (ggml's "repack" idea, like its q4_0_8x8, shaped for the Java Vector API).
 *
 * <p>Layout: rows in groups of R, columns in blocks of 32. For group g and block k, 16 lines of R bytes: line j
 * holds, for each of the R rows, column j in the low nibble and column j + 16 in the high one (Q4_0's own
 * in-block order). Scales stay in the file's precision, so the repacking is no bigger than the file and holds the
 * same values exactly: Q4_0 keeps its half-precision d per row and block (value = (q - 8) d); Q4_K keeps, per row
 * and block, its 6-bit scale and min as bytes, and per row and super-block of 256 its half-precision d and dmin
 * (value = (d sc) q - dmin m).
 *
 * <p>Why: with the rows across the lanes, one R-byte load gives two columns of R rows; widened to shorts, the
 * nibbles multiply with the broadcast int8 activation and accumulate in 16-bit lanes with no horizontal sum per
 * block. A block's sum of (q - 8) * x is at most 32 * 8 * 127 = 32512 in magnitude, so it fits a short exactly even
 * though the raw sum of q * x wraps: the wrap-around cancels when 8 * sum(x) is subtracted. That is about a third of
 * the instructions of the float route per weight, which is what bounds 4-bit decoding on the CPU. The kernels are
 * written out without helpers: past the JIT's inlining budget, a call that takes or returns vectors boxes them.
 */
public final class Q4RowGroupTensor extends RowGroupTensor {

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GGMLType source;
    private final int blocks; // per row
    /** Q4_0: half d per (group, block, row); Q4_K: per (group, super-block) 32 half d then 32 half dmin. */
    private final MemorySegment scales;
    /** Q4_K only: per (group, block) 32 scale bytes then 32 min bytes. */
    private final MemorySegment subScales;

    private Q4RowGroupTensor(GGMLType source, MemorySegment nibbles, MemorySegment scales, MemorySegment subScales, int rows, int cols) {
        super(nibbles, rows, cols);
        this.source = source;
        this.blocks = cols / 32;
        this.scales = scales;
        this.subScales = subScales;
    }

    /** Whether a tensor of this type and shape can be repacked, and the CPU has the 512-bit vectors the kernels use. */
    public static boolean supports(FloatTensor t, long rows, long cols) {
        return AVAILABLE && rows % R == 0 && rows <= Integer.MAX_VALUE && cols <= Integer.MAX_VALUE
                && (t instanceof Q4_0Tensor && cols % 32 == 0 || t instanceof Q4_KTensor && cols % 256 == 0);
    }

    /** Repacks a Q4_0 or Q4_K matrix of {@code rows} x {@code cols} into memory owned by {@code arena}. */
    public static Q4RowGroupTensor repack(FloatTensor src, int rows, int cols, Arena arena) {
        if (!supports(src, rows, cols)) throw new IllegalArgumentException("cannot repack " + src.type() + " " + rows + "x" + cols);
        boolean k = src instanceof Q4_KTensor;
        long n = (long) rows * cols;
        MemorySegment nibbles = arena.allocate(n / 2, 64);
        MemorySegment scales = arena.allocate(k ? n / 256 * 4 : n / 32 * 2, 64);
        MemorySegment subScales = k ? arena.allocate(n / 32 * 2, 64) : null;
        MemorySegment in = src.data();
        int blocks = cols / 32;
        // groups are independent: repack them on every core (this is on the path from launch to first token)
        repackInParallel(rows / R, () -> {
            byte[] out = new byte[blocks * 16 * R];
            byte[] halves = new byte[k ? blocks / 8 * 4 * R : blocks * 2 * R];
            byte[] sub = new byte[k ? blocks * 2 * R : 0];
            int rowBytes = k ? blocks / 8 * 144 : blocks * 18;
            byte[] src32 = new byte[R * rowBytes];
            return g -> {
                // the group's 32 source rows in one bulk read, then transposed from the array
                MemorySegment.copy(in, ValueLayout.JAVA_BYTE, (long) g * R * rowBytes, src32, 0, src32.length);
                for (int lane = 0; lane < R; lane++) {
                    if (k) {
                        for (int s = 0; s < blocks / 8; s++) {
                            int at = lane * rowBytes + s * 144;
                            // d and dmin, bytes as stored (little-endian halves)
                            checkHalf(src32[at], src32[at + 1], (long) g * R + lane);
                            checkHalf(src32[at + 2], src32[at + 3], (long) g * R + lane);
                            halves[s * 4 * R + 2 * lane] = src32[at];
                            halves[s * 4 * R + 2 * lane + 1] = src32[at + 1];
                            halves[s * 4 * R + 2 * R + 2 * lane] = src32[at + 2];
                            halves[s * 4 * R + 2 * R + 2 * lane + 1] = src32[at + 3];
                            for (int sb = 0; sb < 8; sb++) {
                                int b = s * 8 + sb;
                                int sm = KQuant.scaleMin(src32, at + 4, sb);
                                sub[b * 2 * R + lane] = (byte) (sm & 0xFF);
                                sub[b * 2 * R + R + lane] = (byte) (sm >>> 8);
                                int qs = at + 16 + 32 * (sb / 2);
                                int shift = (sb % 2) * 4;
                                for (int j = 0; j < 16; j++) {
                                    int lo = (src32[qs + j] >> shift) & 0xF;
                                    int hi = (src32[qs + j + 16] >> shift) & 0xF;
                                    out[b * 16 * R + j * R + lane] = (byte) (lo | hi << 4);
                                }
                            }
                        }
                    } else {
                        for (int b = 0; b < blocks; b++) {
                            int at = lane * rowBytes + b * 18;
                            checkHalf(src32[at], src32[at + 1], (long) g * R + lane);
                            halves[b * 2 * R + 2 * lane] = src32[at];
                            halves[b * 2 * R + 2 * lane + 1] = src32[at + 1];
                            int o = b * 16 * R + lane;
                            for (int j = 0; j < 16; j++) out[o + j * R] = src32[at + 2 + j];
                        }
                    }
                }
                MemorySegment.copy(out, 0, nibbles, ValueLayout.JAVA_BYTE, (long) g * blocks * 16 * R, out.length);
                MemorySegment.copy(halves, 0, scales, ValueLayout.JAVA_BYTE, (long) g * halves.length, halves.length);
                if (k) MemorySegment.copy(sub, 0, subScales, ValueLayout.JAVA_BYTE, (long) g * sub.length, sub.length);
            };
        });
        return new Q4RowGroupTensor(src.type(), nibbles, scales, subScales, rows, cols);
    }

    @Override
    public GGMLType type() {
        return source; // same values as the tensor it came from
    }

    @Override
    public MemorySegment[] segments() {
        return new MemorySegment[] {data, scales, subScales};
    }

    static Q4RowGroupTensor fromSegments(GGMLType source, MemorySegment[] s, int rows, int cols) {
        boolean k = source == GGMLType.Q4_K;
        if (!k && source != GGMLType.Q4_0 || s.length != 3 || rows % R != 0 || cols % (k ? 256 : 32) != 0) {
            throw new IllegalArgumentException("not a repacked Q4_0/Q4_K layout: " + source + " " + rows + "x" + cols);
        }
        long n = (long) rows * cols;
        checkSize(s[0], n / 2, "nibbles");
        checkSize(s[1], k ? n / 256 * 4 : n / 32 * 2, "scales");
        if (k) checkSize(s[2], n / 32 * 2, "sub-block scales");
        return new Q4RowGroupTensor(source, s[0], s[1], k ? s[2] : null, rows, cols);
    }

    @Override
    public float getFloat(long index) {
        int r = (int) (index / cols);
        int c = (int) (index % cols);
        int lane = r % R;
        int j = c % 32;
        long gb = (long) (r / R) * blocks + c / 32;
        int v = data.get(ValueLayout.JAVA_BYTE, gb * 16 * R + (j % 16) * (long) R + lane) & 0xFF;
        int q = j < 16 ? v & 0xF : v >>> 4;
        if (subScales == null) return (q - 8) * Float.float16ToFloat(scales.get(HALF, (gb * R + lane) * 2));
        float d = Float.float16ToFloat(scales.get(HALF, gb / 8 * 4 * R + lane * 2));
        float dmin = Float.float16ToFloat(scales.get(HALF, gb / 8 * 4 * R + 2 * R + lane * 2));
        float scale = d * (subScales.get(ValueLayout.JAVA_BYTE, gb * 2 * R + lane) & 0xFF);
        float min = dmin * (subScales.get(ValueLayout.JAVA_BYTE, gb * 2 * R + R + lane) & 0xFF);
        return scale * q - min;
    }

    @Override
    public void multiply(Q8Activations a, int t, int from, int to, float[] out, int o) {
        if (subScales == null) multiplyQ4_0(a, t, from, to, out, o);
        else multiplyQ4_K(a, t, from, to, out, o);
    }

    private void multiplyQ4_0(Q8Activations a, int t, int from, int to, float[] out, int o) {
        short[] xq = a.q;
        float[] xd = a.d;
        int[] xs = a.sums;
        int x0 = t * cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(FLOATS);
            FloatVector a00 = z, a01 = z;
            long gb = (long) g * blocks;
            for (int b = 0; b < blocks; b++, gb++) {
                long line = gb * 16 * R;
                int c = b * 32;
                ShortVector s0 = ShortVector.zero(SHORTS);
                for (int j = 0; j < 16; j++, line += R) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, SHORTS, 0);
                    ShortVector lo = w.and((short) 0xF);
                    ShortVector hi = w.lanewise(VectorOperators.LSHR, 4);
                    int cj = c + j;
                    s0 = s0.add(lo.mul(xq[x0 + cj])).add(hi.mul(xq[x0 + cj + 16]));
                }
                int k0 = (x0 + c) / 32;
                s0 = s0.sub((short) (8 * xs[k0])); // exact: the true sum of (q - 8) * x fits 16 bits
                ShortVector h = ShortVector.fromMemorySegment(SHORTS, scales, gb * 2 * R, ByteOrder.LITTLE_ENDIAN);
                IntVector d0i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector d0 = d0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector d1i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector d1 = d1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                a00 = ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 0)).fma(d0.mul(xd[k0]), a00);
                a01 = ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 1)).fma(d1.mul(xd[k0]), a01);
            }
            a00.intoArray(out, o + g * R);
            a01.intoArray(out, o + g * R + R / 2);
        }
    }

    /**
     * Q4_K: the super-block's d and dmin are decoded at the top of each super-block (8 blocks), not under a condition
     * inside the block loop: vectors assigned on one branch and carried around the loop were boxed on every block
     * when C2 compiled the method from some profiles (the decode allocation test caught it now and then).
     */
    private void multiplyQ4_K(Q8Activations a, int t, int from, int to, float[] out, int o) {
        short[] xq = a.q;
        float[] xd = a.d;
        int[] xs = a.sums;
        int x0 = t * cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(FLOATS);
            FloatVector a00 = z, a01 = z;
            long gb = (long) g * blocks;
            for (int b8 = 0; b8 < blocks; b8 += 8) {
                ShortVector hd = ShortVector.fromMemorySegment(SHORTS, scales, gb / 8 * 4 * R, ByteOrder.LITTLE_ENDIAN);
                ShortVector hm = ShortVector.fromMemorySegment(SHORTS, scales, gb / 8 * 4 * R + 2 * R, ByteOrder.LITTLE_ENDIAN);
                IntVector nd0i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector sd0 = nd0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nd0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector nd1i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector sd1 = nd1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nd1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector nm0i = (IntVector) hm.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector sm0 = nm0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nm0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector nm1i = (IntVector) hm.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector sm1 = nm1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nm1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                for (int b = b8; b < b8 + 8; b++, gb++) {
                    long line = gb * 16 * R;
                    int c = b * 32;
                    ShortVector s0 = ShortVector.zero(SHORTS);
                    for (int j = 0; j < 16; j++, line += R) {
                        ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2S, SHORTS, 0);
                        ShortVector lo = w.and((short) 0xF);
                        ShortVector hi = w.lanewise(VectorOperators.LSHR, 4);
                        int cj = c + j;
                        s0 = s0.add(lo.mul(xq[x0 + cj])).add(hi.mul(xq[x0 + cj + 16]));
                    }
                    int k0 = (x0 + c) / 32;
                    s0 = s0.sub((short) (8 * xs[k0])); // exact: the true sum of (q - 8) * x fits 16 bits
                    // scale = d * sc and min = dmin * m, as Q4_K decodes; summed: scale * (s + 8 sum x) - min * sum x
                    ByteVector sc = ByteVector.fromMemorySegment(BYTES, subScales, gb * 2 * R, ByteOrder.LITTLE_ENDIAN);
                    ByteVector mn = ByteVector.fromMemorySegment(BYTES, subScales, gb * 2 * R + R, ByteOrder.LITTLE_ENDIAN);
                    FloatVector d0 = ((FloatVector) sc.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 0).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd0);
                    FloatVector e0 = d0.mul(8f).sub(((FloatVector) mn.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 0).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sm0));
                    FloatVector d1 = ((FloatVector) sc.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 1).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd1);
                    FloatVector e1 = d1.mul(8f).sub(((FloatVector) mn.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 1).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sm1));
                    a00 = e0.fma(FloatVector.broadcast(FLOATS, (float) xs[k0]), ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 0)).mul(d0)).fma(FloatVector.broadcast(FLOATS, xd[k0]), a00);
                    a01 = e1.fma(FloatVector.broadcast(FLOATS, (float) xs[k0]), ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 1)).mul(d1)).fma(FloatVector.broadcast(FLOATS, xd[k0]), a01);
                }
            }
            a00.intoArray(out, o + g * R);
            a01.intoArray(out, o + g * R + R / 2);
        }
    }

    @Override
    public void multiply4(Q8Activations a, int t, int from, int to, float[] out, int o, int stride) {
        if (subScales == null) multiply4Q4_0(a, t, from, to, out, o, stride);
        else multiply4Q4_K(a, t, from, to, out, o, stride);
    }

    private void multiply4Q4_0(Q8Activations a, int t, int from, int to, float[] out, int o, int stride) {
        short[] xq = a.q;
        float[] xd = a.d;
        int[] xs = a.sums;
        int x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(FLOATS);
            FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
            long gb = (long) g * blocks;
            for (int b = 0; b < blocks; b++, gb++) {
                long line = gb * 16 * R;
                int c = b * 32;
                ShortVector zs = ShortVector.zero(SHORTS);
                ShortVector s0 = zs, s1 = zs, s2 = zs, s3 = zs;
                for (int j = 0; j < 16; j++, line += R) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, SHORTS, 0);
                    ShortVector lo = w.and((short) 0xF);
                    ShortVector hi = w.lanewise(VectorOperators.LSHR, 4);
                    int cj = c + j;
                    s0 = s0.add(lo.mul(xq[x0 + cj])).add(hi.mul(xq[x0 + cj + 16]));
                    s1 = s1.add(lo.mul(xq[x1 + cj])).add(hi.mul(xq[x1 + cj + 16]));
                    s2 = s2.add(lo.mul(xq[x2 + cj])).add(hi.mul(xq[x2 + cj + 16]));
                    s3 = s3.add(lo.mul(xq[x3 + cj])).add(hi.mul(xq[x3 + cj + 16]));
                }
                int k0 = (x0 + c) / 32;
                s0 = s0.sub((short) (8 * xs[k0])); // exact: the true sum of (q - 8) * x fits 16 bits
                int k1 = (x1 + c) / 32;
                s1 = s1.sub((short) (8 * xs[k1])); // exact: the true sum of (q - 8) * x fits 16 bits
                int k2 = (x2 + c) / 32;
                s2 = s2.sub((short) (8 * xs[k2])); // exact: the true sum of (q - 8) * x fits 16 bits
                int k3 = (x3 + c) / 32;
                s3 = s3.sub((short) (8 * xs[k3])); // exact: the true sum of (q - 8) * x fits 16 bits
                ShortVector h = ShortVector.fromMemorySegment(SHORTS, scales, gb * 2 * R, ByteOrder.LITTLE_ENDIAN);
                IntVector d0i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector d0 = d0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector d1i = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector d1 = d1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(d1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                a00 = ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 0)).fma(d0.mul(xd[k0]), a00);
                a01 = ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 1)).fma(d1.mul(xd[k0]), a01);
                a10 = ((FloatVector) s1.convertShape(VectorOperators.S2F, FLOATS, 0)).fma(d0.mul(xd[k1]), a10);
                a11 = ((FloatVector) s1.convertShape(VectorOperators.S2F, FLOATS, 1)).fma(d1.mul(xd[k1]), a11);
                a20 = ((FloatVector) s2.convertShape(VectorOperators.S2F, FLOATS, 0)).fma(d0.mul(xd[k2]), a20);
                a21 = ((FloatVector) s2.convertShape(VectorOperators.S2F, FLOATS, 1)).fma(d1.mul(xd[k2]), a21);
                a30 = ((FloatVector) s3.convertShape(VectorOperators.S2F, FLOATS, 0)).fma(d0.mul(xd[k3]), a30);
                a31 = ((FloatVector) s3.convertShape(VectorOperators.S2F, FLOATS, 1)).fma(d1.mul(xd[k3]), a31);
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

    /** Q4_K for four tokens: as {@link #multiplyQ4_K}, the super-block's d and dmin decoded at its top, not under a condition. */
    private void multiply4Q4_K(Q8Activations a, int t, int from, int to, float[] out, int o, int stride) {
        short[] xq = a.q;
        float[] xd = a.d;
        int[] xs = a.sums;
        int x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(FLOATS);
            FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
            long gb = (long) g * blocks;
            for (int b8 = 0; b8 < blocks; b8 += 8) {
                ShortVector hd = ShortVector.fromMemorySegment(SHORTS, scales, gb / 8 * 4 * R, ByteOrder.LITTLE_ENDIAN);
                ShortVector hm = ShortVector.fromMemorySegment(SHORTS, scales, gb / 8 * 4 * R + 2 * R, ByteOrder.LITTLE_ENDIAN);
                IntVector nd0i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector sd0 = nd0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nd0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector nd1i = (IntVector) hd.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector sd1 = nd1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nd1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector nm0i = (IntVector) hm.convertShape(VectorOperators.S2I, INTS, 0);
                FloatVector sm0 = nm0i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nm0i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                IntVector nm1i = (IntVector) hm.convertShape(VectorOperators.S2I, INTS, 1);
                FloatVector sm1 = nm1i.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                        .reinterpretAsInts().or(nm1i.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                for (int b = b8; b < b8 + 8; b++, gb++) {
                    long line = gb * 16 * R;
                    int c = b * 32;
                    ShortVector zs = ShortVector.zero(SHORTS);
                    ShortVector s0 = zs, s1 = zs, s2 = zs, s3 = zs;
                    for (int j = 0; j < 16; j++, line += R) {
                        ShortVector w = (ShortVector) ByteVector.fromMemorySegment(BYTES, data, line, ByteOrder.LITTLE_ENDIAN)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2S, SHORTS, 0);
                        ShortVector lo = w.and((short) 0xF);
                        ShortVector hi = w.lanewise(VectorOperators.LSHR, 4);
                        int cj = c + j;
                        s0 = s0.add(lo.mul(xq[x0 + cj])).add(hi.mul(xq[x0 + cj + 16]));
                        s1 = s1.add(lo.mul(xq[x1 + cj])).add(hi.mul(xq[x1 + cj + 16]));
                        s2 = s2.add(lo.mul(xq[x2 + cj])).add(hi.mul(xq[x2 + cj + 16]));
                        s3 = s3.add(lo.mul(xq[x3 + cj])).add(hi.mul(xq[x3 + cj + 16]));
                    }
                    int k0 = (x0 + c) / 32;
                    s0 = s0.sub((short) (8 * xs[k0])); // exact: the true sum of (q - 8) * x fits 16 bits
                    int k1 = (x1 + c) / 32;
                    s1 = s1.sub((short) (8 * xs[k1])); // exact: the true sum of (q - 8) * x fits 16 bits
                    int k2 = (x2 + c) / 32;
                    s2 = s2.sub((short) (8 * xs[k2])); // exact: the true sum of (q - 8) * x fits 16 bits
                    int k3 = (x3 + c) / 32;
                    s3 = s3.sub((short) (8 * xs[k3])); // exact: the true sum of (q - 8) * x fits 16 bits
                    // scale = d * sc and min = dmin * m, as Q4_K decodes; summed: scale * (s + 8 sum x) - min * sum x
                    ByteVector sc = ByteVector.fromMemorySegment(BYTES, subScales, gb * 2 * R, ByteOrder.LITTLE_ENDIAN);
                    ByteVector mn = ByteVector.fromMemorySegment(BYTES, subScales, gb * 2 * R + R, ByteOrder.LITTLE_ENDIAN);
                    FloatVector d0 = ((FloatVector) sc.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 0).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd0);
                    FloatVector e0 = d0.mul(8f).sub(((FloatVector) mn.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 0).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sm0));
                    FloatVector d1 = ((FloatVector) sc.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 1).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sd1);
                    FloatVector e1 = d1.mul(8f).sub(((FloatVector) mn.convertShape(VectorOperators.ZERO_EXTEND_B2I, INTS, 1).convertShape(VectorOperators.I2F, FLOATS, 0)).mul(sm1));
                    a00 = e0.fma(FloatVector.broadcast(FLOATS, (float) xs[k0]), ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 0)).mul(d0)).fma(FloatVector.broadcast(FLOATS, xd[k0]), a00);
                    a01 = e1.fma(FloatVector.broadcast(FLOATS, (float) xs[k0]), ((FloatVector) s0.convertShape(VectorOperators.S2F, FLOATS, 1)).mul(d1)).fma(FloatVector.broadcast(FLOATS, xd[k0]), a01);
                    a10 = e0.fma(FloatVector.broadcast(FLOATS, (float) xs[k1]), ((FloatVector) s1.convertShape(VectorOperators.S2F, FLOATS, 0)).mul(d0)).fma(FloatVector.broadcast(FLOATS, xd[k1]), a10);
                    a11 = e1.fma(FloatVector.broadcast(FLOATS, (float) xs[k1]), ((FloatVector) s1.convertShape(VectorOperators.S2F, FLOATS, 1)).mul(d1)).fma(FloatVector.broadcast(FLOATS, xd[k1]), a11);
                    a20 = e0.fma(FloatVector.broadcast(FLOATS, (float) xs[k2]), ((FloatVector) s2.convertShape(VectorOperators.S2F, FLOATS, 0)).mul(d0)).fma(FloatVector.broadcast(FLOATS, xd[k2]), a20);
                    a21 = e1.fma(FloatVector.broadcast(FLOATS, (float) xs[k2]), ((FloatVector) s2.convertShape(VectorOperators.S2F, FLOATS, 1)).mul(d1)).fma(FloatVector.broadcast(FLOATS, xd[k2]), a21);
                    a30 = e0.fma(FloatVector.broadcast(FLOATS, (float) xs[k3]), ((FloatVector) s3.convertShape(VectorOperators.S2F, FLOATS, 0)).mul(d0)).fma(FloatVector.broadcast(FLOATS, xd[k3]), a30);
                    a31 = e1.fma(FloatVector.broadcast(FLOATS, (float) xs[k3]), ((FloatVector) s3.convertShape(VectorOperators.S2F, FLOATS, 1)).mul(d1)).fma(FloatVector.broadcast(FLOATS, xd[k3]), a31);
                }
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
