package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * A ggml block-quantized tensor: values come in blocks of {@link GGMLType#blockSize} elements stored in
 * {@link GGMLType#blockBytes} bytes. Subclasses say how one block decodes ({@link #dequantizeBlock}); the
 * generic dot product decodes a block into a small per-thread buffer and multiplies it with the Vector API.
 * Hot types override {@link #dot} with a fused loop.
 */
public abstract class BlockTensor extends FloatTensor {

    static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    protected static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[256]);

    protected final int blockSize;
    protected final int blockBytes;

    protected BlockTensor(MemorySegment data, long size, GGMLType type) {
        super(data, size);
        this.blockSize = type.blockSize;
        this.blockBytes = type.blockBytes;
        if (size % blockSize != 0 || data.byteSize() != size / blockSize * blockBytes) {
            throw new IllegalArgumentException(type + " tensor of " + size + " values needs " + type.byteSize(size)
                    + " bytes, has " + data.byteSize());
        }
    }

    /** Decodes the block starting at byte {@code blockOffset} into {@code out[outOff .. outOff + blockSize)}. */
    protected abstract void dequantizeBlock(long blockOffset, float[] out, int outOff);

    protected final float half(long byteOffset) {
        return Float.float16ToFloat(data.get(HALF, byteOffset));
    }

    protected final int u8(long byteOffset) {
        return data.get(ValueLayout.JAVA_BYTE, byteOffset) & 0xFF;
    }

    protected final byte i8(long byteOffset) {
        return data.get(ValueLayout.JAVA_BYTE, byteOffset);
    }

    @Override
    public float getFloat(long index) {
        float[] tmp = SCRATCH.get();
        dequantizeBlock(index / blockSize * blockBytes, tmp, 0);
        return tmp[(int) (index % blockSize)];
    }

    @Override
    public void copyTo(long offset, float[] out, int outOffset, int n) {
        if (offset % blockSize != 0 || n % blockSize != 0) {
            super.copyTo(offset, out, outOffset, n);
            return;
        }
        for (int i = 0; i < n; i += blockSize) {
            dequantizeBlock((offset + i) / blockSize * blockBytes, out, outOffset + i);
        }
    }

    @Override
    public float dot(long offset, float[] that, int thatOffset, int n) {
        if (offset % blockSize != 0 || n % blockSize != 0) {
            throw new IllegalArgumentException("dot over a " + type() + " tensor must cover whole blocks");
        }
        float[] tmp = SCRATCH.get();
        FloatVector acc = FloatVector.zero(F_SPECIES);
        int lanes = F_SPECIES.length();
        float tail = 0f;
        long block = offset / blockSize * blockBytes;
        for (int i = 0; i < n; i += blockSize, block += blockBytes) {
            dequantizeBlock(block, tmp, 0);
            int j = 0;
            for (; j + lanes <= blockSize; j += lanes) {
                acc = FloatVector.fromArray(F_SPECIES, tmp, j).fma(FloatVector.fromArray(F_SPECIES, that, thatOffset + i + j), acc);
            }
            for (; j < blockSize; j++) {
                tail += tmp[j] * that[thatOffset + i + j];
            }
        }
        return acc.reduceLanes(VectorOperators.ADD) + tail;
    }
}
