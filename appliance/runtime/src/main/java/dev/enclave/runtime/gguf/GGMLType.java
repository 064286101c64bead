package dev.enclave.runtime.gguf;

/**
 * Tensor element types as numbered by ggml. A type knows its block layout (elements per block and bytes per
 * block), so byte sizes of tensors can be validated before any data is touched. Types whose layout this
 * runtime does not know have {@code blockBytes == 0} and are rejected by name when a tensor uses them.
 */
public enum GGMLType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 2 + 16),
    Q4_1(3, 32, 2 + 2 + 16),
    Q5_0(6, 32, 2 + 4 + 16),
    Q5_1(7, 32, 2 + 2 + 4 + 16),
    Q8_0(8, 32, 2 + 32),
    Q8_1(9, 32, 4 + 32),
    Q2_K(10, 256, 16 + 64 + 2 + 2),
    Q3_K(11, 256, 32 + 64 + 12 + 2),
    Q4_K(12, 256, 2 + 2 + 12 + 128),
    Q5_K(13, 256, 2 + 2 + 12 + 32 + 128),
    Q6_K(14, 256, 128 + 64 + 16 + 2),
    Q8_K(15, 256, 4 + 256 + 32),
    IQ2_XXS(16, 256, 0),
    IQ2_XS(17, 256, 0),
    IQ3_XXS(18, 256, 0),
    IQ1_S(19, 256, 0),
    IQ4_NL(20, 32, 2 + 16),
    IQ3_S(21, 256, 0),
    IQ2_S(22, 256, 0),
    IQ4_XS(23, 256, 2 + 2 + 4 + 128),
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 0),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 0),
    TQ2_0(35, 256, 0);

    private static final GGMLType[] BY_ID = new GGMLType[64];

    static {
        for (GGMLType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    public final int id;
    public final int blockSize;
    public final int blockBytes;

    GGMLType(int id, int blockSize, int blockBytes) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** Returns the type for a ggml id, or null when the id is not a ggml type. */
    public static GGMLType fromId(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }

    public boolean hasKnownLayout() {
        return blockBytes > 0;
    }

    /** Bytes taken by {@code elements} values of this type; the count must be a whole number of blocks. */
    public long byteSize(long elements) {
        if (!hasKnownLayout()) {
            throw new IllegalStateException("tensor type " + this + " has no known block layout");
        }
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(elements + " elements is not a multiple of the " + this + " block size " + blockSize);
        }
        return Math.multiplyExact(elements / blockSize, (long) blockBytes);
    }
}
