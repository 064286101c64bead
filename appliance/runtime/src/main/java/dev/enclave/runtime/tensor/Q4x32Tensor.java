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
 * 4-bit weights (Q4_0 or Q4_K) repacked at load, 32 rows at a time, for integer products with
 * {@link Q8Activations} (ggml's "repack" idea, like its q4_0_8x8, shaped for the Java Vector API).
 *
 * <p>Layout: rows in groups of 32, columns in blocks of 32. For group g and block k, 16 lines of 32 bytes: line j
 * holds, for each of the 32 rows, column j in the low nibble and column j + 16 in the high one (Q4_0's own
 * in-block order). Beside it, per row and block, a float scale and (Q4_K only) a float min: value = scale * q - min
 * for Q4_0 with min = 8 * scale, Q4_K with its own min. Both repackings hold the original values exactly.
 *
 * <p>Why: with the rows across the lanes, one 32-byte load gives two columns of 32 rows; widened to shorts, the
 * nibbles multiply with the broadcast int8 activation and accumulate in 16-bit lanes with no horizontal sum per
 * block. A block's sum of (q - 8) * x is at most 32 * 8 * 127 = 32512 in magnitude, so it fits a short exactly even
 * though the raw sum of q * x wraps: the wrap-around cancels when 8 * sum(x) is subtracted. That is about a third of
 * the instructions of the float route per weight, which is what bounds 4-bit decoding on the CPU.
 */
public final class Q4x32Tensor extends RowGroupTensor {

    static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    static final VectorSpecies<Float> F16 = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    static final VectorSpecies<Integer> I16 = IntVector.SPECIES_512;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GGMLType source;
    private final int blocks; // per row
    private final MemorySegment scales; // float per (group, block, row in group)
    private final MemorySegment mins;   // same layout; null for Q4_0

    private Q4x32Tensor(GGMLType source, MemorySegment nibbles, MemorySegment scales, MemorySegment mins, int rows, int cols) {
        super(nibbles, rows, cols);
        this.source = source;
        this.blocks = cols / 32;
        this.scales = scales;
        this.mins = mins;
    }

    /** Whether a tensor of this type and shape can be repacked, and the CPU has the 512-bit vectors the kernels use. */
    public static boolean supports(FloatTensor t, long rows, long cols) {
        return Kernels.WIDE && rows % 32 == 0 && rows <= Integer.MAX_VALUE && cols <= Integer.MAX_VALUE
                && (t instanceof Q4_0Tensor && cols % 32 == 0 || t instanceof Q4_KTensor && cols % 256 == 0);
    }

    /** Repacks a Q4_0 or Q4_K matrix of {@code rows} x {@code cols} into memory owned by {@code arena}. */
    public static Q4x32Tensor repack(FloatTensor src, int rows, int cols, Arena arena) {
        if (!supports(src, rows, cols)) throw new IllegalArgumentException("cannot repack " + src.type() + " " + rows + "x" + cols);
        boolean k = src instanceof Q4_KTensor;
        long n = (long) rows * cols;
        MemorySegment nibbles = arena.allocate(n / 2, 64);
        MemorySegment scales = arena.allocate(n / 32 * 4, 64);
        MemorySegment mins = k ? arena.allocate(n / 32 * 4, 64) : null;
        MemorySegment in = src.data();
        int blocks = cols / 32;
        // groups are independent: repack them on every core (this is on the path from launch to first token)
        repackInParallel(rows / 32, () -> {
            byte[] out = new byte[blocks * 512];
            float[] sc = new float[blocks * 32];
            float[] mn = new float[blocks * 32];
            byte[] vals = new byte[32];
            int rowBytes = blocks * 18;
            byte[] src32 = new byte[k ? 0 : 32 * rowBytes];
            return g -> {
                if (k) {
                    for (int lane = 0; lane < 32; lane++) {
                        long row = (long) g * 32 + lane;
                        for (int b = 0; b < blocks; b++) {
                            q4kBlock(in, row, cols, b, vals, sc, mn, b * 32 + lane);
                            for (int j = 0; j < 16; j++) out[b * 512 + j * 32 + lane] = (byte) (vals[j] | vals[j + 16] << 4);
                        }
                    }
                } else {
                    // the group's 32 source rows in one bulk read, then transposed from the array
                    MemorySegment.copy(in, ValueLayout.JAVA_BYTE, (long) g * 32 * rowBytes, src32, 0, src32.length);
                    for (int lane = 0; lane < 32; lane++) {
                        for (int b = 0; b < blocks; b++) {
                            int at = lane * rowBytes + b * 18;
                            sc[b * 32 + lane] = Float.float16ToFloat((short) ((src32[at] & 0xFF) | src32[at + 1] << 8));
                            int o = b * 512 + lane;
                            for (int j = 0; j < 16; j++) out[o + j * 32] = src32[at + 2 + j];
                        }
                    }
                }
                MemorySegment.copy(out, 0, nibbles, ValueLayout.JAVA_BYTE, (long) g * blocks * 512, out.length);
                MemorySegment.copy(sc, 0, scales, F32, (long) g * blocks * 128, sc.length);
                if (k) MemorySegment.copy(mn, 0, mins, F32, (long) g * blocks * 128, mn.length);
            };
        });
        return new Q4x32Tensor(src.type(), nibbles, scales, mins, rows, cols);
    }

    /** The 32 4-bit values, scale and min of block {@code b} (32 columns) of a Q4_K row; ggml's dequantize_row_q4_K. */
    private static void q4kBlock(MemorySegment in, long row, int cols, int b, byte[] vals, float[] sc, float[] mn, int at) {
        long sb = (row * (cols / 256) + b / 8) * 144; // super-block
        int sub = b % 8;
        float d = Float.float16ToFloat(in.get(HALF, sb));
        float dmin = Float.float16ToFloat(in.get(HALF, sb + 2));
        int sm = KQuant.scaleMin(in, sb + 4, sub);
        sc[at] = d * (sm & 0xFF);
        mn[at] = dmin * (sm >>> 8);
        long qs = sb + 16 + 32L * (sub / 2);
        int shift = (sub % 2) * 4;
        for (int l = 0; l < 32; l++) vals[l] = (byte) ((in.get(ValueLayout.JAVA_BYTE, qs + l) >> shift) & 0xF);
    }

    @Override
    public GGMLType type() {
        return source; // same values as the tensor it came from
    }

    @Override
    public float getFloat(long index) {
        int r = (int) (index / cols);
        int c = (int) (index % cols);
        return value(r / 32, r % 32, c / 32, c % 32);
    }

    private float value(int g, int lane, int b, int j) {
        long gb = (long) g * blocks + b;
        int v = data.get(ValueLayout.JAVA_BYTE, gb * 512 + (j % 16) * 32L + lane) & 0xFF;
        int q = j < 16 ? v & 0xF : v >>> 4;
        float scale = scales.get(F32, (gb * 32 + lane) * 4);
        return mins == null ? (q - 8) * scale : scale * q - mins.get(F32, (gb * 32 + lane) * 4);
    }

    /**
     * Rows of groups [from, to) times quantized token {@code t}: {@code out[o + r]} for every row r of those groups.
     */
    @Override
    public void multiply(Q8Activations a, int t, int from, int to, float[] out, int o) {
        short[] xq = a.q;
        float[] xd = a.d;
        int[] xs = a.sums;
        int xb = t * cols;
        for (int g = from; g < to; g++) {
            FloatVector acc0 = FloatVector.zero(F16);
            FloatVector acc1 = acc0;
            long gb = (long) g * blocks;
            for (int b = 0; b < blocks; b++, gb++) {
                long line = gb * 512;
                int xi = xb + b * 32;
                ShortVector s = ShortVector.zero(S32);
                for (int j = 0; j < 16; j++, line += 32) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(B32, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    s = s.add(w.and((short) 0xF).mul(xq[xi + j])).add(w.lanewise(VectorOperators.LSHR, 4).mul(xq[xi + j + 16]));
                }
                int blk = xi / 32;
                s = s.sub((short) (8 * xs[blk])); // exact: the true sum of (q - 8) * x fits 16 bits
                FloatVector f0 = (FloatVector) s.convertShape(VectorOperators.S2F, F16, 0);
                FloatVector f1 = (FloatVector) s.convertShape(VectorOperators.S2F, F16, 1);
                float dx = xd[blk];
                FloatVector d0 = FloatVector.fromMemorySegment(F16, scales, gb * 128, ByteOrder.LITTLE_ENDIAN);
                FloatVector d1 = FloatVector.fromMemorySegment(F16, scales, gb * 128 + 64, ByteOrder.LITTLE_ENDIAN);
                if (mins != null) {
                    // scale * q - min summed: scale * (s + 8 sum x) - min * sum x = scale * s + (8 scale - min) * sum x
                    FloatVector m0 = FloatVector.fromMemorySegment(F16, mins, gb * 128, ByteOrder.LITTLE_ENDIAN);
                    FloatVector m1 = FloatVector.fromMemorySegment(F16, mins, gb * 128 + 64, ByteOrder.LITTLE_ENDIAN);
                    float sx = xs[blk];
                    f0 = d0.mul(8f).sub(m0).fma(FloatVector.broadcast(F16, sx), f0.mul(d0));
                    f1 = d1.mul(8f).sub(m1).fma(FloatVector.broadcast(F16, sx), f1.mul(d1));
                    acc0 = f0.fma(FloatVector.broadcast(F16, dx), acc0);
                    acc1 = f1.fma(FloatVector.broadcast(F16, dx), acc1);
                } else {
                    acc0 = f0.fma(d0.mul(dx), acc0);
                    acc1 = f1.fma(d1.mul(dx), acc1);
                }
            }
            acc0.intoArray(out, o + g * 32);
            acc1.intoArray(out, o + g * 32 + 16);
        }
    }

    /**
     * Rows of groups [from, to) times four quantized tokens t .. t + 3 at once (batched decode, prompt chunks): each
     * line of nibbles is widened once and used four times. Token i's outputs go to {@code out[o + i * stride + r]}.
     */
    @Override
    public void multiply4(Q8Activations a, int t, int from, int to, float[] out, int o, int stride) {
        short[] xq = a.q;
        float[] xd = a.d;
        int[] xs = a.sums;
        int x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int g = from; g < to; g++) {
            FloatVector a00 = FloatVector.zero(F16), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            long gb = (long) g * blocks;
            for (int b = 0; b < blocks; b++, gb++) {
                long line = gb * 512;
                int c = b * 32;
                ShortVector s0 = ShortVector.zero(S32), s1 = s0, s2 = s0, s3 = s0;
                for (int j = 0; j < 16; j++, line += 32) {
                    ShortVector w = (ShortVector) ByteVector.fromMemorySegment(B32, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    ShortVector lo = w.and((short) 0xF);
                    ShortVector hi = w.lanewise(VectorOperators.LSHR, 4);
                    int cj = c + j;
                    s0 = s0.add(lo.mul(xq[x0 + cj])).add(hi.mul(xq[x0 + cj + 16]));
                    s1 = s1.add(lo.mul(xq[x1 + cj])).add(hi.mul(xq[x1 + cj + 16]));
                    s2 = s2.add(lo.mul(xq[x2 + cj])).add(hi.mul(xq[x2 + cj + 16]));
                    s3 = s3.add(lo.mul(xq[x3 + cj])).add(hi.mul(xq[x3 + cj + 16]));
                }
                FloatVector d0 = FloatVector.fromMemorySegment(F16, scales, gb * 128, ByteOrder.LITTLE_ENDIAN);
                FloatVector d1 = FloatVector.fromMemorySegment(F16, scales, gb * 128 + 64, ByteOrder.LITTLE_ENDIAN);
                FloatVector e0 = null, e1 = null;
                if (mins != null) {
                    e0 = d0.mul(8f).sub(FloatVector.fromMemorySegment(F16, mins, gb * 128, ByteOrder.LITTLE_ENDIAN));
                    e1 = d1.mul(8f).sub(FloatVector.fromMemorySegment(F16, mins, gb * 128 + 64, ByteOrder.LITTLE_ENDIAN));
                }
                int k0 = (x0 + c) / 32, k1 = (x1 + c) / 32, k2 = (x2 + c) / 32, k3 = (x3 + c) / 32;
                // exact: each true block sum of (q - 8) * x fits 16 bits
                s0 = s0.sub((short) (8 * xs[k0]));
                s1 = s1.sub((short) (8 * xs[k1]));
                s2 = s2.sub((short) (8 * xs[k2]));
                s3 = s3.sub((short) (8 * xs[k3]));
                // written out, not a helper: this method is past the JIT's inlining budget, and a call taking vectors boxes them
                if (mins != null) {
                    FloatVector m0 = FloatVector.broadcast(F16, (float) xs[k0]);
                    FloatVector m1 = FloatVector.broadcast(F16, (float) xs[k1]);
                    FloatVector m2 = FloatVector.broadcast(F16, (float) xs[k2]);
                    FloatVector m3 = FloatVector.broadcast(F16, (float) xs[k3]);
                    a00 = e0.fma(m0, ((FloatVector) s0.convertShape(VectorOperators.S2F, F16, 0)).mul(d0)).fma(FloatVector.broadcast(F16, xd[k0]), a00);
                    a01 = e1.fma(m0, ((FloatVector) s0.convertShape(VectorOperators.S2F, F16, 1)).mul(d1)).fma(FloatVector.broadcast(F16, xd[k0]), a01);
                    a10 = e0.fma(m1, ((FloatVector) s1.convertShape(VectorOperators.S2F, F16, 0)).mul(d0)).fma(FloatVector.broadcast(F16, xd[k1]), a10);
                    a11 = e1.fma(m1, ((FloatVector) s1.convertShape(VectorOperators.S2F, F16, 1)).mul(d1)).fma(FloatVector.broadcast(F16, xd[k1]), a11);
                    a20 = e0.fma(m2, ((FloatVector) s2.convertShape(VectorOperators.S2F, F16, 0)).mul(d0)).fma(FloatVector.broadcast(F16, xd[k2]), a20);
                    a21 = e1.fma(m2, ((FloatVector) s2.convertShape(VectorOperators.S2F, F16, 1)).mul(d1)).fma(FloatVector.broadcast(F16, xd[k2]), a21);
                    a30 = e0.fma(m3, ((FloatVector) s3.convertShape(VectorOperators.S2F, F16, 0)).mul(d0)).fma(FloatVector.broadcast(F16, xd[k3]), a30);
                    a31 = e1.fma(m3, ((FloatVector) s3.convertShape(VectorOperators.S2F, F16, 1)).mul(d1)).fma(FloatVector.broadcast(F16, xd[k3]), a31);
                } else {
                    a00 = ((FloatVector) s0.convertShape(VectorOperators.S2F, F16, 0)).fma(d0.mul(xd[k0]), a00);
                    a01 = ((FloatVector) s0.convertShape(VectorOperators.S2F, F16, 1)).fma(d1.mul(xd[k0]), a01);
                    a10 = ((FloatVector) s1.convertShape(VectorOperators.S2F, F16, 0)).fma(d0.mul(xd[k1]), a10);
                    a11 = ((FloatVector) s1.convertShape(VectorOperators.S2F, F16, 1)).fma(d1.mul(xd[k1]), a11);
                    a20 = ((FloatVector) s2.convertShape(VectorOperators.S2F, F16, 0)).fma(d0.mul(xd[k2]), a20);
                    a21 = ((FloatVector) s2.convertShape(VectorOperators.S2F, F16, 1)).fma(d1.mul(xd[k2]), a21);
                    a30 = ((FloatVector) s3.convertShape(VectorOperators.S2F, F16, 0)).fma(d0.mul(xd[k3]), a30);
                    a31 = ((FloatVector) s3.convertShape(VectorOperators.S2F, F16, 1)).fma(d1.mul(xd[k3]), a31);
                }
            }
            int r = o + g * 32;
            a00.intoArray(out, r);
            a01.intoArray(out, r + 16);
            a10.intoArray(out, r + stride);
            a11.intoArray(out, r + stride + 16);
            a20.intoArray(out, r + 2 * stride);
            a21.intoArray(out, r + 2 * stride + 16);
            a30.intoArray(out, r + 3 * stride);
            a31.intoArray(out, r + 3 * stride + 16);
        }
    }

    /**
     * Prompt processing: rows of groups [from, to) times 8 float (not quantized) tokens, {@code x[xOff + i * xStride ..]}
     * for token i; outputs to {@code out[o + i * stride + r]}. Each line of nibbles is decoded to floats once (scale
     * applied) and multiplied with the 8 tokens as an outer product (32 rows x 8 tokens of accumulators): the decoding
     * is shared, and each broadcast activation feeds two multiply-adds. More tokens per tile spill registers.
     */
    @Override
    public void multiplyFloat8(float[] x, int xOff, int xStride, int from, int to, float[] out, int o, int stride) {
        for (int g = from; g < to; g++) {
            FloatVector z = FloatVector.zero(F16);
            FloatVector a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z, a40 = z, a41 = z, a50 = z, a51 = z, a60 = z, a61 = z, a70 = z, a71 = z;
            long gb = (long) g * blocks;
            for (int b = 0; b < blocks; b++, gb++) {
                FloatVector sc0 = FloatVector.fromMemorySegment(F16, scales, gb * 128, ByteOrder.LITTLE_ENDIAN);
                FloatVector sc1 = FloatVector.fromMemorySegment(F16, scales, gb * 128 + 64, ByteOrder.LITTLE_ENDIAN);
                FloatVector neg0 = mins == null ? sc0.mul(-8f) : FloatVector.fromMemorySegment(F16, mins, gb * 128, ByteOrder.LITTLE_ENDIAN).neg();
                FloatVector neg1 = mins == null ? sc1.mul(-8f) : FloatVector.fromMemorySegment(F16, mins, gb * 128 + 64, ByteOrder.LITTLE_ENDIAN).neg();
                long line = gb * 512;
                int c = xOff + b * 32;
                for (int j = 0; j < 16; j++, line += 32) {
                    IntVector q0 = (IntVector) ByteVector.fromMemorySegment(B16, data, line, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I16, 0);
                    IntVector q1 = (IntVector) ByteVector.fromMemorySegment(B16, data, line + 16, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I16, 0);
                    FloatVector lo0 = ((FloatVector) q0.and(0xF).convertShape(VectorOperators.I2F, F16, 0)).fma(sc0, neg0);
                    FloatVector hi0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F16, 0)).fma(sc0, neg0);
                    FloatVector lo1 = ((FloatVector) q1.and(0xF).convertShape(VectorOperators.I2F, F16, 0)).fma(sc1, neg1);
                    FloatVector hi1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F16, 0)).fma(sc1, neg1);
                    int xi = c + j;
                    FloatVector l, h;
                    l = FloatVector.broadcast(F16, x[xi + 0 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 0 * xStride + 16]);
                    a00 = hi0.fma(h, lo0.fma(l, a00));
                    a01 = hi1.fma(h, lo1.fma(l, a01));
                    l = FloatVector.broadcast(F16, x[xi + 1 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 1 * xStride + 16]);
                    a10 = hi0.fma(h, lo0.fma(l, a10));
                    a11 = hi1.fma(h, lo1.fma(l, a11));
                    l = FloatVector.broadcast(F16, x[xi + 2 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 2 * xStride + 16]);
                    a20 = hi0.fma(h, lo0.fma(l, a20));
                    a21 = hi1.fma(h, lo1.fma(l, a21));
                    l = FloatVector.broadcast(F16, x[xi + 3 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 3 * xStride + 16]);
                    a30 = hi0.fma(h, lo0.fma(l, a30));
                    a31 = hi1.fma(h, lo1.fma(l, a31));
                    l = FloatVector.broadcast(F16, x[xi + 4 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 4 * xStride + 16]);
                    a40 = hi0.fma(h, lo0.fma(l, a40));
                    a41 = hi1.fma(h, lo1.fma(l, a41));
                    l = FloatVector.broadcast(F16, x[xi + 5 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 5 * xStride + 16]);
                    a50 = hi0.fma(h, lo0.fma(l, a50));
                    a51 = hi1.fma(h, lo1.fma(l, a51));
                    l = FloatVector.broadcast(F16, x[xi + 6 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 6 * xStride + 16]);
                    a60 = hi0.fma(h, lo0.fma(l, a60));
                    a61 = hi1.fma(h, lo1.fma(l, a61));
                    l = FloatVector.broadcast(F16, x[xi + 7 * xStride]);
                    h = FloatVector.broadcast(F16, x[xi + 7 * xStride + 16]);
                    a70 = hi0.fma(h, lo0.fma(l, a70));
                    a71 = hi1.fma(h, lo1.fma(l, a71));
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
