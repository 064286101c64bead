package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.tensor.FloatTensor;
import java.lang.foreign.MemorySegment;

/**
 * A Q4_0 or Q8_0 matrix repacked at load for the native kernels (16 rows to a group, across the vector lanes; see
 * {@link NativeKernels#repackedBytes}). Products go through the library; single values and rows (an embedding lookup)
 * are read from the file's own layout, which stays mapped.
 */
final class NativeRepackedTensor extends FloatTensor {

    /**
     * The layout's name in the {@link RepackCache}: a new number whenever the library's repacked layout changes
     * (enclave_repack), so that an older cache file's tensors are repacked again instead of misread.
     */
    static final String KIND = "NativeRepacked-1";

    final FloatTensor source;
    final MemorySegment packed;
    final int rows;
    final int cols;
    private final NativeKernels kernels;
    /** Per thread, native memory for rows read out ({@link #copyTo}): grown when a longer row is read, never per call. */
    private static final ThreadLocal<MemorySegment[]> ROW = ThreadLocal.withInitial(() -> new MemorySegment[] {MemorySegment.NULL});

    NativeRepackedTensor(NativeKernels kernels, FloatTensor source, MemorySegment packed, int rows, int cols) {
        super(source.data(), source.size());
        this.kernels = kernels;
        this.source = source;
        this.packed = packed;
        this.rows = rows;
        this.cols = cols;
    }

    @Override
    public GGMLType type() {
        return source.type();
    }

    @Override
    public float getFloat(long index) {
        return source.getFloat(index);
    }

    @Override
    public float dot(long offset, float[] that, int thatOffset, int n) {
        return source.dot(offset, that, thatOffset, n);
    }

    /**
     * Embedding rows, decoded by the library from the file's layout: the Java decoders' vector code is not what this
     * route compiles and warms, and run cold it boxed vectors on every token.
     */
    @Override
    public void copyTo(long offset, float[] out, int outOffset, int n) {
        MemorySegment[] holder = ROW.get();
        if (holder[0].byteSize() < (long) n * Float.BYTES) holder[0] = java.lang.foreign.Arena.ofAuto().allocate((long) n * Float.BYTES, 64);
        kernels.dequantize(source.type(), source.data(), offset, n, holder[0]);
        MemorySegment.copy(holder[0], java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, out, outOffset, n);
    }
}
