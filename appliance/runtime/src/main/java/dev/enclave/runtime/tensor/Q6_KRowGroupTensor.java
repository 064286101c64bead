package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * What the two repacked forms of Q6_K share ({@link Q6RowGroupTensor} at 6 bits, {@link Int8RowGroupTensor} as
 * int8): Q6_K's own scales, an int8 scale per row and 16 columns and a half-precision d per row and super-block of
 * 256 (value = (d sc) q), laid out per group with the rows across the lanes; the load-time repacking loop; the
 * checks of a cached layout. The forms differ in how a sub-block's values are laid out, and in their kernels.
 */
abstract sealed class Q6_KRowGroupTensor extends RowGroupTensor permits Q6RowGroupTensor, Int8RowGroupTensor {

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Writes one row's 16 values of a sub-block ({@code q[at .. at + 16)}, Q6_K's q - 32) into a group's lines. */
    interface SubBlockLayout {
        void write(byte[] out, int base, int lane, byte[] q, int at);
    }

    final int subs; // 16-column sub-blocks per row
    /** Per (group, super-block): R half-precision d. */
    final MemorySegment scales;
    /** Per (group, sub-block): R int8 scales. */
    final MemorySegment subScales;

    Q6_KRowGroupTensor(MemorySegment values, MemorySegment scales, MemorySegment subScales, int rows, int cols) {
        super(values, rows, cols);
        this.subs = cols / 16;
        this.scales = scales;
        this.subScales = subScales;
    }

    /** Whether a tensor of this type and shape can be repacked on this CPU (either form). */
    public static boolean supports(FloatTensor t, long rows, long cols) {
        return AVAILABLE && t instanceof Q6_KTensor && rows % R == 0 && cols % 256 == 0 && rows <= Integer.MAX_VALUE && cols <= Integer.MAX_VALUE;
    }

    /**
     * Repacks a Q6_K matrix on every core: {values, scales, sub-block scales}, the values {@code bytesPerSubBlock}
     * per group and sub-block as {@code layout} writes them.
     */
    static MemorySegment[] repack(Q6_KTensor src, int rows, int cols, Arena arena, int bytesPerSubBlock, SubBlockLayout layout) {
        if (!supports(src, rows, cols)) throw new IllegalArgumentException("cannot repack Q6_K " + rows + "x" + cols);
        long n = (long) rows * cols;
        MemorySegment values = arena.allocate(n / 16 * bytesPerSubBlock / R, 64);
        MemorySegment scales = arena.allocate(n / 256 * 2, 64);
        MemorySegment subScales = arena.allocate(n / 16, 64);
        MemorySegment in = src.data();
        int subs = cols / 16;
        int superBlocks = cols / 256;
        repackInParallel(rows / R, () -> {
            byte[] raw = new byte[210];
            byte[] q = new byte[256];
            float[] unused = new float[16];
            byte[] out = new byte[subs * bytesPerSubBlock];
            byte[] halves = new byte[superBlocks * 2 * R];
            byte[] sub = new byte[subs * R];
            return g -> {
                for (int lane = 0; lane < R; lane++) {
                    long row = (long) g * R + lane;
                    for (int s = 0; s < superBlocks; s++) {
                        Int8RowsTensor.repackSuperBlock(in, row * superBlocks + s, raw, q, unused);
                        checkHalf(raw[208], raw[209], row);
                        halves[s * 2 * R + 2 * lane] = raw[208]; // d, little-endian half
                        halves[s * 2 * R + 2 * lane + 1] = raw[209];
                        for (int v = 0; v < 16; v++) {
                            int u = s * 16 + v;
                            sub[u * R + lane] = raw[192 + v];
                            layout.write(out, u * bytesPerSubBlock, lane, q, v * 16);
                        }
                    }
                }
                MemorySegment.copy(out, 0, values, ValueLayout.JAVA_BYTE, (long) g * out.length, out.length);
                MemorySegment.copy(halves, 0, scales, ValueLayout.JAVA_BYTE, (long) g * halves.length, halves.length);
                MemorySegment.copy(sub, 0, subScales, ValueLayout.JAVA_BYTE, (long) g * sub.length, sub.length);
            };
        });
        return new MemorySegment[] {values, scales, subScales};
    }

    /** Checks cached segments of a form with {@code bytesPerSubBlock} value bytes per group and sub-block. */
    static void checkSegments(GGMLType source, MemorySegment[] s, int rows, int cols, int bytesPerSubBlock) {
        if (source != GGMLType.Q6_K || s.length != 3 || rows % R != 0 || cols % 256 != 0) {
            throw new IllegalArgumentException("not a repacked Q6_K layout: " + source + " " + rows + "x" + cols);
        }
        long n = (long) rows * cols;
        checkSize(s[0], n / 16 * bytesPerSubBlock / R, "values");
        checkSize(s[1], n / 256 * 2, "scales");
        checkSize(s[2], n / 16, "sub-block scales");
    }

    /** The scale (d sc) of row {@code lane} of group-and-sub-block {@code gu}. */
    final float scale(long gu, int lane) {
        float d = Float.float16ToFloat(scales.get(HALF, gu / 16 * 2 * R + 2L * lane));
        return d * subScales.get(ValueLayout.JAVA_BYTE, gu * R + lane);
    }

    @Override
    public final GGMLType type() {
        return GGMLType.Q6_K; // same values as the Q6_K tensor it came from
    }

    @Override
    public final MemorySegment[] segments() {
        return new MemorySegment[] {data, scales, subScales};
    }
}
