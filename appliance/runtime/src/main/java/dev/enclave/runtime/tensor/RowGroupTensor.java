package dev.enclave.runtime.tensor;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;
import java.util.function.IntConsumer;
import java.util.function.Supplier;
import java.util.stream.IntStream;

/**
 * A matrix repacked at load into groups of {@link #R} rows with the rows across the vector lanes ({@link Q4RowGroupTensor},
 * {@link Q6RowGroupTensor}, {@link Int8RowGroupTensor}, {@link Q8RowGroupTensor}). Products go through these kernels instead of per-row dot products: the integer kernels take
 * activations quantized like ggml's ({@link Q8Activations}). The kernels write out even the 3-line half-to-float
 * conversion they all share: as a 2-line static helper it was not inlined into kernels this large, its vectors were
 * boxed (decode allocated 11.5 KB per step on a Q4_0 model, 121 KB on Q4_K_M; {@code DecodeAllocationTest}) and the
 * 4-token kernels lost 18-23% (JMH, 2026-11-25). Single values
 * and rows ({@link #getFloat}, {@link #copyTo}, {@link #dot}) stay available for lookups, slowly.
 */
public abstract class RowGroupTensor extends FloatTensor {

    /**
     * One short per row of a group: the CPU's widest vector of 16-bit lanes. The rows of a group are its lanes, so
     * a group is 32 rows on AVX-512, 16 on AVX2 and 8 on NEON (the QCS6490's Cortex-A78/A55), the kernels the same.
     */
    static final VectorSpecies<Short> SHORTS = ShortVector.SPECIES_PREFERRED;
    /** Rows per group. */
    public static final int R = SHORTS.length();
    /** One byte per row (a line of the layout), half the width of {@link #SHORTS}, widened to it. */
    static final VectorSpecies<Byte> BYTES = SHORTS.vectorBitSize() == 512 ? ByteVector.SPECIES_256
            : SHORTS.vectorBitSize() == 256 ? ByteVector.SPECIES_128 : ByteVector.SPECIES_64;
    /** Half the rows of a group, for the 32-bit stages (sums, scales). */
    static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    /** Whether the integer kernels run on this CPU: vectors of at least 8 shorts, all four species the same width. */
    public static final boolean AVAILABLE = R >= 8 && INTS.vectorBitSize() == SHORTS.vectorBitSize()
            && FLOATS.vectorBitSize() == SHORTS.vectorBitSize();

    protected final int rows;
    protected final int cols;

    protected RowGroupTensor(MemorySegment data, int rows, int cols) {
        super(data, (long) rows * cols);
        this.rows = rows;
        this.cols = cols;
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    /** Number of {@link #R}-row groups: the unit of work split across threads. */
    public final int groups() {
        return rows / R;
    }

    /** What the memory holds, for {@link #segments}: the class's simple name and the rows per group. */
    public final String kind() {
        return kindOf(getClass());
    }

    /** The {@link #kind} of tensors of this class on this CPU. */
    public static String kindOf(Class<? extends RowGroupTensor> c) {
        return c.getSimpleName() + "/" + R;
    }

    /** The memory this tensor reads, in a fixed order (a null entry for an absent part): what a cache file stores. */
    public abstract MemorySegment[] segments();

    /** Rebuilds a tensor of {@code kind} from {@link #segments} of the same kind, shape and source type; checks sizes. */
    public static RowGroupTensor fromSegments(String kind, dev.enclave.runtime.gguf.GGMLType source, MemorySegment[] segments, int rows, int cols) {
        if (!kind.endsWith("/" + R)) throw new IllegalArgumentException("repacked for groups of another size: " + kind);
        return switch (kind.substring(0, kind.lastIndexOf('/'))) {
            case "Q4RowGroupTensor" -> Q4RowGroupTensor.fromSegments(source, segments, rows, cols);
            case "Int8RowGroupTensor" -> Int8RowGroupTensor.fromSegments(source, segments, rows, cols);
            case "Q6RowGroupTensor" -> Q6RowGroupTensor.fromSegments(source, segments, rows, cols);
            case "Q8RowGroupTensor" -> Q8RowGroupTensor.fromSegments(source, segments, rows, cols);
            default -> throw new IllegalArgumentException("unknown repacked kind " + kind);
        };
    }

    /**
     * Where row {@code lane} of a group sits in a line of {@link Q8RowGroupTensor}: rows 0 .. R/2 - 1 in the even bytes,
     * the others in the odd ones. Widened to shorts and summed, a line read as ints then holds a row of each half of
     * the group per lane, so the sums reach 32 bits with two shifts instead of the lane-crossing sign extension that
     * cost Q8_0 prompts 30%. ({@link Int8RowGroupTensor} widens once per 8 columns, not per 2: the same change
     * measured no faster there, JMH 4-token 32.8 vs 34.7 GB/s, so it keeps rows in order.)
     */
    static int interleaved(int lane) {
        return lane < R / 2 ? 2 * lane : 2 * (lane - R / 2) + 1;
    }

    static void checkSize(MemorySegment s, long expected, String what) {
        if (s == null || s.byteSize() != expected) {
            throw new IllegalArgumentException(what + ": " + (s == null ? "missing" : s.byteSize() + " bytes") + ", expected " + expected);
        }
    }

    /** Rows of groups [from, to) times quantized token {@code t}: {@code out[o + r]}. */
    public abstract void multiply(Q8Activations a, int t, int from, int to, float[] out, int o);

    /** The same for tokens t .. t + 3; token i's outputs at {@code out[o + i * stride + r]}. */
    public abstract void multiply4(Q8Activations a, int t, int from, int to, float[] out, int o, int stride);

    @Override
    public void copyTo(long offset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) out[outOffset + i] = getFloat(offset + i);
    }

    /** A float dot product of one row through {@link #getFloat} (exact, slow: the kernels are the fast route). */
    @Override
    public float dot(long offset, float[] x, int xo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += getFloat(offset + i) * x[xo + i];
        return s;
    }

    /**
     * Repacks groups [0, groups) on every core. {@code perTask} makes one worker per task with its own buffers, so a
     * repack of gigabytes leaves a few buffers of garbage, not one per group (garbage grows the heap, and the
     * resident memory with it).
     */
    static void repackInParallel(int groups, Supplier<IntConsumer> perTask) {
        int tasks = Math.max(1, Math.min(groups, 4 * Runtime.getRuntime().availableProcessors()));
        IntStream.range(0, tasks).parallel().forEach(t -> {
            IntConsumer repackGroup = perTask.get();
            for (long g = (long) groups * t / tasks; g < (long) groups * (t + 1) / tasks; g++) repackGroup.accept((int) g);
        });
    }

    /**
     * Refuses a half-precision scale that is infinite or NaN (a corrupt or hostile file): the kernels widen halves
     * with integer arithmetic, which would turn it into a large finite number instead of spreading the NaN.
     */
    static void checkHalf(byte low, byte high, long row) {
        if ((high & 0x7C) == 0x7C) {
            throw new dev.enclave.runtime.ModelFormatException("holds a non-finite value (NaN or infinity) in row " + row
                    + ", a corrupt quantization scale (half bits 0x" + Integer.toHexString((high & 0xFF) << 8 | (low & 0xFF)) + ")");
        }
    }
}
