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

    NativeRepackedTensor(FloatTensor source, MemorySegment packed, int rows, int cols) {
        super(source.data(), source.size());
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

    @Override
    public void copyTo(long offset, float[] out, int outOffset, int n) {
        source.copyTo(offset, out, outOffset, n);
    }
}
