package dev.enclave.runtime.gguf;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF v3 files: metadata of any type, then tensor infos, then aligned tensor data. Used to make
 * random-weight models of real shapes (benchmarks, no download) and test files.
 *
 * <p>Metadata values map to GGUF types by their Java type: String → STRING, Boolean → BOOL, Integer → INT32,
 * Long → INT64, Float → FLOAT32, Double → FLOAT64, Byte → INT8, Short → INT16, and {@link GGUFArray} or
 * {@link Typed} for anything else (unsigned types, arrays).
 */
public final class GGUFWriter {

    /** A value with an explicit GGUF type, e.g. {@code new Typed(GGUFValueType.UINT32, 7L)}. */
    public record Typed(GGUFValueType type, Object value) {
    }

    /**
     * Tensor data supplied by the caller, now or (for large files) when it is written: it must hold exactly the
     * type's byte size for {@code dims}.
     */
    private record Tensor(String name, long[] dims, GGMLType type, long byteSize, java.util.function.Supplier<MemorySegment> bytes) {
    }

    private final Map<String, Object> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private int alignment = GGUFFile.DEFAULT_ALIGNMENT;

    public GGUFWriter put(String key, Object value) {
        if (key.equals("general.alignment")) {
            long a = value instanceof Typed t ? ((Number) t.value()).longValue() : ((Number) value).longValue();
            alignment = (int) a;
        }
        metadata.put(key, value);
        return this;
    }

    public GGUFWriter tensor(String name, GGMLType type, MemorySegment bytes, long... dims) {
        long elements = 1;
        for (long d : dims) elements = Math.multiplyExact(elements, d);
        if (type.byteSize(elements) != bytes.byteSize()) {
            throw new IllegalArgumentException("tensor " + name + ": " + bytes.byteSize() + " bytes given, " + type
                    + " " + java.util.Arrays.toString(dims) + " needs " + type.byteSize(elements));
        }
        tensors.add(new Tensor(name, dims.clone(), type, bytes.byteSize(), () -> bytes));
        return this;
    }

    /** A tensor whose bytes are produced only when the file is written, so big models never sit in memory whole. */
    public GGUFWriter lazyTensor(String name, GGMLType type, java.util.function.Supplier<MemorySegment> bytes, long... dims) {
        long elements = 1;
        for (long d : dims) elements = Math.multiplyExact(elements, d);
        long size = type.byteSize(elements);
        tensors.add(new Tensor(name, dims.clone(), type, size, () -> {
            MemorySegment seg = bytes.get();
            if (seg.byteSize() != size) throw new IllegalStateException("tensor " + name + " produced " + seg.byteSize() + " bytes, expected " + size);
            return seg;
        }));
        return this;
    }

    public GGUFWriter tensor(String name, float[] values, long... dims) {
        return tensor(name, GGMLType.F32, MemorySegment.ofArray(values), dims);
    }

    public void write(Path path) throws IOException {
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 16)) {
            write(out);
        }
    }

    public byte[] toBytes() {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try {
            write(out);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    public void write(OutputStream raw) throws IOException {
        Counting out = new Counting(raw);
        out.i32(GGUFFile.MAGIC);
        out.i32(3);
        out.i64(tensors.size());
        out.i64(metadata.size());
        for (Map.Entry<String, Object> e : metadata.entrySet()) {
            out.str(e.getKey());
            writeValue(out, e.getValue(), true);
        }
        long offset = 0;
        for (Tensor t : tensors) {
            out.str(t.name);
            out.i32(t.dims.length);
            for (long d : t.dims) out.i64(d);
            out.i32(t.type.id);
            out.i64(offset);
            offset = GGUFFile.alignUp(offset + t.byteSize, alignment);
        }
        out.pad(alignment);
        byte[] chunk = new byte[1 << 16];
        for (Tensor t : tensors) {
            MemorySegment data = t.bytes.get();
            for (long pos = 0; pos < data.byteSize(); pos += chunk.length) {
                int n = (int) Math.min(chunk.length, data.byteSize() - pos);
                MemorySegment.copy(data, ValueLayout.JAVA_BYTE, pos, chunk, 0, n);
                out.bytes(chunk, n);
            }
            out.pad(alignment);
        }
        out.flush();
    }

    private static void writeValue(Counting out, Object v, boolean withType) throws IOException {
        GGUFValueType type;
        Object value = v;
        if (v instanceof Typed t) {
            type = t.type();
            value = t.value();
        } else {
            type = switch (v) {
                case String s -> GGUFValueType.STRING;
                case Boolean b -> GGUFValueType.BOOL;
                case Integer i -> GGUFValueType.INT32;
                case Long l -> GGUFValueType.INT64;
                case Float f -> GGUFValueType.FLOAT32;
                case Double d -> GGUFValueType.FLOAT64;
                case Byte b -> GGUFValueType.INT8;
                case Short s -> GGUFValueType.INT16;
                case GGUFArray a -> GGUFValueType.ARRAY;
                default -> throw new IllegalArgumentException("no GGUF type for " + v.getClass());
            };
        }
        if (withType) out.i32(type.ordinal());
        switch (type) {
            case UINT8, INT8 -> out.u8(((Number) value).intValue());
            case UINT16, INT16 -> out.i16(((Number) value).intValue());
            case UINT32, INT32 -> out.i32(((Number) value).intValue());
            case UINT64, INT64 -> out.i64(((Number) value).longValue());
            case FLOAT32 -> out.i32(Float.floatToRawIntBits(((Number) value).floatValue()));
            case FLOAT64 -> out.i64(Double.doubleToRawLongBits(((Number) value).doubleValue()));
            case BOOL -> out.u8((Boolean) value ? 1 : 0);
            case STRING -> out.str((String) value);
            case ARRAY -> {
                GGUFArray a = (GGUFArray) value;
                out.i32(a.elementType().ordinal());
                out.i64(a.length());
                Object vals = a.values();
                for (int i = 0; i < a.length(); i++) {
                    Object e = java.lang.reflect.Array.get(vals, i);
                    if (a.elementType() == GGUFValueType.BOOL && e instanceof Byte b) e = b != 0; // bools are stored as bytes
                    writeValue(out, new Typed(a.elementType(), e), false);
                }
            }
        }
    }

    /** Little-endian primitive writer that tracks its position, for alignment padding. */
    private static final class Counting {
        private final OutputStream out;
        private final ByteBuffer buf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        private long written;

        Counting(OutputStream out) {
            this.out = out;
        }

        void u8(int v) throws IOException {
            out.write(v);
            written++;
        }

        void i16(int v) throws IOException {
            buf.clear();
            buf.putShort((short) v);
            out.write(buf.array(), 0, 2);
            written += 2;
        }

        void i32(int v) throws IOException {
            buf.clear();
            buf.putInt(v);
            out.write(buf.array(), 0, 4);
            written += 4;
        }

        void i64(long v) throws IOException {
            buf.clear();
            buf.putLong(v);
            out.write(buf.array(), 0, 8);
            written += 8;
        }

        void str(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            i64(b.length);
            bytes(b, b.length);
        }

        void bytes(byte[] b, int n) throws IOException {
            out.write(b, 0, n);
            written += n;
        }

        void pad(int alignment) throws IOException {
            while (written % alignment != 0) u8(0);
        }

        void flush() throws IOException {
            out.flush();
        }
    }
}
