package dev.enclave.runtime.gguf;

import java.util.Arrays;

/**
 * One tensor's header entry: name, shape (ggml order: {@code dims[0]} is the row length), element type, and
 * byte offset of its data relative to the start of the file's data section.
 */
public record GGUFTensorInfo(String name, long[] dims, GGMLType type, long offset, long elements, long byteSize) {

    /** Row length: the innermost dimension. */
    public long rowLength() {
        return dims.length == 0 ? 1 : dims[0];
    }

    /** Number of rows: product of all dimensions after the first. */
    public long rows() {
        return dims.length == 0 ? 1 : elements / dims[0];
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(dims) + " @" + offset;
    }
}
