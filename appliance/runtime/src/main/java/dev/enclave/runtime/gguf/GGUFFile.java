package dev.enclave.runtime.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF (v2 or v3) model file: metadata, tensor directory and tensor data. The file is memory-mapped through
 * {@code java.lang.foreign}, so files larger than 2 GiB work and tensor data is never copied onto the heap.
 *
 * <p>Every count, length, offset and size is checked against the bytes actually present before it is used:
 * a truncated or hostile file fails with a {@link GGUFFormatException} saying what is wrong and where, never
 * with an out-of-memory error or an out-of-bounds read.
 */
public final class GGUFFile implements AutoCloseable {

    public static final int MAGIC = 0x46554747; // "GGUF" little-endian
    public static final int DEFAULT_ALIGNMENT = 32;
    private static final int MAX_DIMS = 4;
    private static final int MAX_ARRAY_DEPTH = 8;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Arena arena;
    private final MemorySegment segment;
    private final int version;
    private final Map<String, Object> metadata;
    /** The maps behind the unmodifiable views, for {@link #forgetArray}. */
    private final Map<String, Object> mutableMetadata;
    private final Map<String, GGUFValueType> mutableTypes;
    private final Map<String, GGUFValueType> metadataTypes;
    private final Map<String, GGUFTensorInfo> tensors;
    private final int alignment;
    private final long dataStart;

    /** Whether {@code file} starts with GGUF's magic bytes (read without mapping or parsing the rest). */
    public static boolean hasMagic(java.nio.file.Path file) {
        try (var in = java.nio.file.Files.newInputStream(file)) {
            byte[] b = in.readNBytes(4);
            return b.length == 4 && b[0] == 'G' && b[1] == 'G' && b[2] == 'U' && b[3] == 'F';
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /** String arrays at least this long are decoded on first use (see {@link GGUFArray}). */
    private static final int LAZY_STRINGS = 4096;

    // parse cursor, only used while constructing
    private long pos;
    /** One string's bytes on their way to a String: reused, the metadata holds hundreds of thousands of strings. */
    private byte[] scratch = new byte[256];

    private GGUFFile(Arena arena, MemorySegment segment) {
        this.arena = arena;
        this.segment = segment;
        try {
            int magic = readInt("magic");
            if (magic != MAGIC) {
                throw new GGUFFormatException(String.format("not a GGUF file: magic is 0x%08x, expected 0x%08x (\"GGUF\")", magic, MAGIC));
            }
            int v = readInt("version");
            if (v == 1) {
                throw new GGUFFormatException("GGUF version 1 is obsolete and not supported; convert the model again with a current llama.cpp");
            }
            if (v != 2 && v != 3) {
                if (Integer.reverseBytes(v) == 2 || Integer.reverseBytes(v) == 3) {
                    throw new GGUFFormatException("big-endian GGUF files are not supported");
                }
                throw new GGUFFormatException("unsupported GGUF version " + Integer.toUnsignedString(v));
            }
            this.version = v;
            long tensorCount = readLong("tensor count");
            long kvCount = readLong("metadata count");
            // Each metadata entry needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor entry at least 8 + 4 + 4 + 8.
            checkCount(kvCount, 13, "metadata count");
            Map<String, Object> md = new LinkedHashMap<>();
            Map<String, GGUFValueType> mdTypes = new LinkedHashMap<>();
            for (long i = 0; i < kvCount; i++) {
                long at = pos;
                String key = readString("metadata key #" + i);
                int typeId = readInt("type of metadata '" + key + "'");
                GGUFValueType type = GGUFValueType.fromId(typeId);
                if (type == null) {
                    throw new GGUFFormatException("metadata '" + key + "' at byte " + at + " has unknown value type " + typeId);
                }
                Object value = readValue(type, key, 0);
                if (md.putIfAbsent(key, value) != null) {
                    throw new GGUFFormatException("duplicate metadata key '" + key + "'");
                }
                mdTypes.put(key, type);
            }
            this.mutableMetadata = md;
            this.mutableTypes = mdTypes;
            this.metadata = Collections.unmodifiableMap(md);
            this.metadataTypes = Collections.unmodifiableMap(mdTypes);
            this.alignment = alignmentFrom(md);

            checkCount(tensorCount, 24, "tensor count");
            Map<String, GGUFTensorInfo> ts = new LinkedHashMap<>();
            for (long i = 0; i < tensorCount; i++) {
                GGUFTensorInfo t = readTensorInfo(i);
                if (ts.putIfAbsent(t.name(), t) != null) {
                    throw new GGUFFormatException("duplicate tensor name '" + t.name() + "'");
                }
            }
            this.dataStart = alignUp(pos, alignment);
            if (tensorCount > 0 && dataStart > segment.byteSize()) {
                throw new GGUFFormatException("file ends before its tensor data section (" + dataStart + " > " + segment.byteSize() + " bytes)");
            }
            long dataBytes = segment.byteSize() - Math.min(dataStart, segment.byteSize());
            for (GGUFTensorInfo t : ts.values()) {
                if (t.offset() % alignment != 0) {
                    throw new GGUFFormatException("tensor '" + t.name() + "' offset " + t.offset() + " is not aligned to " + alignment);
                }
                if (t.offset() > dataBytes || t.byteSize() > dataBytes - t.offset()) {
                    throw new GGUFFormatException("tensor '" + t.name() + "' data [" + t.offset() + ", +" + t.byteSize()
                            + ") lies beyond the end of the file (data section has " + dataBytes + " bytes)");
                }
            }
            // no two tensors may share bytes (a hostile file could alias one tensor's data into another)
            GGUFTensorInfo[] byOffset = ts.values().toArray(new GGUFTensorInfo[0]);
            java.util.Arrays.sort(byOffset, java.util.Comparator.comparingLong(GGUFTensorInfo::offset));
            for (int i = 1; i < byOffset.length; i++) {
                GGUFTensorInfo a = byOffset[i - 1];
                GGUFTensorInfo b = byOffset[i];
                if (a.offset() + a.byteSize() > b.offset() && a.byteSize() > 0 && b.byteSize() > 0) {
                    throw new GGUFFormatException("tensors '" + a.name() + "' and '" + b.name() + "' overlap in the data section");
                }
            }
            this.tensors = Collections.unmodifiableMap(ts);
        } catch (IndexOutOfBoundsException e) {
            throw new GGUFFormatException("truncated GGUF file: read past the end at byte " + pos, e);
        }
    }

    /** Memory-maps and parses a GGUF file. Close the returned file to unmap it. */
    public static GGUFFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new GGUFFile(arena, seg);
        } catch (RuntimeException | IOException e) {
            arena.close();
            if (e instanceof GGUFFormatException g) {
                throw new GGUFFormatException(path + ": " + g.getMessage(), g);
            }
            throw e;
        }
    }

    /** Parses a GGUF image already in memory (e.g. a bundled resource). The caller owns the segment's lifetime. */
    public static GGUFFile read(MemorySegment segment) {
        return new GGUFFile(null, segment);
    }

    /** Reads a whole GGUF image from bytes (copied into native memory owned by the returned file). */
    public static GGUFFile read(byte[] bytes) {
        Arena arena = Arena.ofShared();
        MemorySegment seg = arena.allocate(Math.max(1, bytes.length), 64).asSlice(0, bytes.length);
        MemorySegment.copy(MemorySegment.ofArray(bytes), 0, seg, 0, bytes.length);
        try {
            return new GGUFFile(arena, seg);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public int version() {
        return version;
    }

    public int alignment() {
        return alignment;
    }

    public long dataStart() {
        return dataStart;
    }

    public long fileSize() {
        return segment.byteSize();
    }

    public Map<String, Object> metadata() {
        return metadata;
    }

    /**
     * Drops the value of a large metadata array whose reader has taken what it needs: a model keeps its GGUFFile open
     * for its whole life, and Llama 3's 280K BPE merge strings alone hold ~18 MB of heap that the tokenizer no longer
     * reads once its merge table is built. Afterwards the key is absent, as if the file had no such entry. Not
     * thread-safe: call it while building a model, before the file is shared.
     */
    /**
     * Drops the metadata section's pages from this process's resident memory: everything in it was copied out while
     * parsing (a Llama 3 vocabulary and merges are ~10 MB of the file), and a mapped page, once touched, otherwise
     * stays resident for the life of the mapping. The pages stay in the page cache; nothing is read from them again.
     */
    public void releaseMetadataPages() {
        if (segment.isMapped() && dataStart > 0) segment.asSlice(0, Math.min(dataStart, segment.byteSize())).unload();
    }

    public void forgetArray(String key) {
        if (metadata.get(key) instanceof GGUFArray) {
            mutableMetadata.remove(key);
            mutableTypes.remove(key);
        }
    }

    /** The on-disk value type of each metadata entry (to copy metadata without changing its types). */
    public GGUFValueType metadataType(String key) {
        return metadataTypes.get(key);
    }

    /** A metadata value wrapped with its on-disk type, ready for {@link GGUFWriter#put}. */
    public GGUFWriter.Typed typedValue(String key) {
        return new GGUFWriter.Typed(metadataTypes.get(key), metadata.get(key));
    }

    public Map<String, GGUFTensorInfo> tensors() {
        return tensors;
    }

    public List<GGUFTensorInfo> tensorList() {
        return List.copyOf(tensors.values());
    }

    public GGUFTensorInfo tensor(String name) {
        return tensors.get(name);
    }

    /** The bytes of a tensor's data, as a slice of the mapped file. */
    public MemorySegment tensorData(GGUFTensorInfo t) {
        return segment.asSlice(dataStart + t.offset(), t.byteSize());
    }

    public boolean has(String key) {
        return metadata.containsKey(key);
    }

    public String getString(String key) {
        Object v = require(key);
        if (v instanceof String s) {
            return s;
        }
        throw wrongType(key, "a string", v);
    }

    public String getString(String key, String dflt) {
        return has(key) ? getString(key) : dflt;
    }

    public long getLong(String key) {
        Object v = require(key);
        if (v instanceof Number n && !(v instanceof Float) && !(v instanceof Double)) {
            return n.longValue();
        }
        throw wrongType(key, "an integer", v);
    }

    public int getInt(String key) {
        long v = getLong(key);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new GGUFFormatException("metadata '" + key + "' = " + v + " is out of range");
        }
        return (int) v;
    }

    public int getInt(String key, int dflt) {
        return has(key) ? getInt(key) : dflt;
    }

    public float getFloat(String key) {
        Object v = require(key);
        if (v instanceof Number n) {
            return n.floatValue();
        }
        throw wrongType(key, "a number", v);
    }

    public float getFloat(String key, float dflt) {
        return has(key) ? getFloat(key) : dflt;
    }

    public boolean getBoolean(String key, boolean dflt) {
        if (!has(key)) {
            return dflt;
        }
        Object v = metadata.get(key);
        if (v instanceof Boolean b) {
            return b;
        }
        throw wrongType(key, "a boolean", v);
    }

    public GGUFArray getArray(String key) {
        Object v = require(key);
        if (v instanceof GGUFArray a) {
            return a;
        }
        throw wrongType(key, "an array", v);
    }

    private Object require(String key) {
        Object v = metadata.get(key);
        if (v == null) {
            throw new GGUFFormatException("missing metadata '" + key + "'");
        }
        return v;
    }

    private static GGUFFormatException wrongType(String key, String expected, Object v) {
        return new GGUFFormatException("metadata '" + key + "' should be " + expected + " but is " + v.getClass().getSimpleName());
    }

    @Override
    public void close() {
        if (arena != null) {
            // a string array not read yet is read now, while its bytes are mapped: metadata outlives the file
            for (Object v : mutableMetadata.values()) if (v instanceof GGUFArray a) a.values();
            arena.close();
        }
    }

    // ---- parsing ----

    private static int alignmentFrom(Map<String, Object> md) {
        Object a = md.get("general.alignment");
        if (a == null) {
            return DEFAULT_ALIGNMENT;
        }
        if (!(a instanceof Number n) || a instanceof Float || a instanceof Double) {
            throw new GGUFFormatException("general.alignment must be an integer");
        }
        long v = n.longValue();
        if (v <= 0 || v > (1 << 20) || Long.bitCount(v) != 1) {
            throw new GGUFFormatException("general.alignment " + v + " is not a power of two in [1, 2^20]");
        }
        return (int) v;
    }

    private void checkCount(long count, long minBytesEach, String what) {
        long remaining = segment.byteSize() - pos;
        if (count < 0 || count > remaining / minBytesEach) {
            throw new GGUFFormatException(what + " " + Long.toUnsignedString(count) + " cannot fit in the " + remaining
                    + " bytes left in the file");
        }
    }

    private GGUFTensorInfo readTensorInfo(long index) {
        String name = readString("name of tensor #" + index);
        int nDims = readInt("dimension count of tensor '" + name + "'");
        if (nDims < 0 || nDims > MAX_DIMS) {
            throw new GGUFFormatException("tensor '" + name + "' has " + Integer.toUnsignedString(nDims) + " dimensions (at most " + MAX_DIMS + ")");
        }
        long[] dims = new long[nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++) {
            long n = readLong("dimension " + d + " of tensor '" + name + "'");
            if (n < 0) {
                throw new GGUFFormatException("tensor '" + name + "' dimension " + d + " is negative or too large: " + Long.toUnsignedString(n));
            }
            dims[d] = n;
            try {
                elements = Math.multiplyExact(elements, n);
            } catch (ArithmeticException e) {
                throw new GGUFFormatException("tensor '" + name + "' element count overflows");
            }
        }
        int typeId = readInt("type of tensor '" + name + "'");
        GGMLType type = GGMLType.fromId(typeId);
        if (type == null) {
            throw new GGUFFormatException("tensor '" + name + "' has unknown ggml type id " + typeId);
        }
        long offset = readLong("offset of tensor '" + name + "'");
        if (offset < 0) {
            throw new GGUFFormatException("tensor '" + name + "' has a negative offset");
        }
        long byteSize;
        if (!type.hasKnownLayout()) {
            throw new GGUFFormatException("tensor '" + name + "' uses type " + type + ", which this runtime does not support yet");
        }
        if (nDims > 0 && dims[0] % type.blockSize != 0) {
            throw new GGUFFormatException("tensor '" + name + "' row length " + dims[0] + " is not a multiple of the " + type
                    + " block size " + type.blockSize);
        }
        try {
            byteSize = type.byteSize(elements);
        } catch (ArithmeticException | IllegalArgumentException e) {
            throw new GGUFFormatException("tensor '" + name + "': " + e.getMessage());
        }
        return new GGUFTensorInfo(name, dims, type, offset, elements, byteSize);
    }

    private Object readValue(GGUFValueType type, String key, int depth) {
        return switch (type) {
            case UINT8 -> Byte.toUnsignedInt(readByte(key));
            case INT8 -> (int) readByte(key);
            case UINT16 -> Short.toUnsignedInt(readShort(key));
            case INT16 -> (int) readShort(key);
            case UINT32 -> Integer.toUnsignedLong(readInt(key));
            case INT32 -> readInt(key);
            case FLOAT32 -> readFloat(key);
            case BOOL -> readBool(key);
            case STRING -> readString(key);
            case UINT64, INT64 -> readLong(key);
            case FLOAT64 -> readDouble(key);
            case ARRAY -> readArray(key, depth);
        };
    }

    private GGUFArray readArray(String key, int depth) {
        if (depth >= MAX_ARRAY_DEPTH) {
            throw new GGUFFormatException("metadata '" + key + "' nests arrays deeper than " + MAX_ARRAY_DEPTH);
        }
        int typeId = readInt(key);
        GGUFValueType et = GGUFValueType.fromId(typeId);
        if (et == null) {
            throw new GGUFFormatException("metadata '" + key + "' is an array of unknown type " + typeId);
        }
        long n = readLong(key);
        checkCount(n, et.width > 0 ? et.width : (et == GGUFValueType.STRING ? 8 : 12), "length of array '" + key + "'");
        if (n > Integer.MAX_VALUE - 8) {
            throw new GGUFFormatException("array '" + key + "' is too long: " + n);
        }
        int len = (int) n;
        Object values = switch (et) {
            case UINT8, INT8, BOOL -> {
                byte[] a = new byte[len];
                MemorySegment.copy(segment, ValueLayout.JAVA_BYTE, pos, a, 0, len);
                pos += len;
                if (et == GGUFValueType.BOOL) {
                    for (byte b : a) {
                        if (b != 0 && b != 1) throw new GGUFFormatException("array '" + key + "' holds a bool that is neither 0 nor 1");
                    }
                }
                yield a;
            }
            case UINT16, INT16 -> {
                short[] a = new short[len];
                MemorySegment.copy(segment, U16, pos, a, 0, len);
                pos += 2L * len;
                yield a;
            }
            case UINT32, INT32 -> {
                int[] a = new int[len];
                MemorySegment.copy(segment, U32, pos, a, 0, len);
                pos += 4L * len;
                yield a;
            }
            case UINT64, INT64 -> {
                long[] a = new long[len];
                MemorySegment.copy(segment, U64, pos, a, 0, len);
                pos += 8L * len;
                yield a;
            }
            case FLOAT32 -> {
                float[] a = new float[len];
                MemorySegment.copy(segment, F32, pos, a, 0, len);
                pos += 4L * len;
                yield a;
            }
            case FLOAT64 -> {
                double[] a = new double[len];
                MemorySegment.copy(segment, F64, pos, a, 0, len);
                pos += 8L * len;
                yield a;
            }
            case STRING -> {
                if (arena != null && depth == 0 && len >= LAZY_STRINGS) {
                    long start = pos;
                    for (int i = 0; i < len; i++) skipString(key);
                    if (pos - start <= Integer.MAX_VALUE - 8) yield new GGUFArray(segment.asSlice(start, pos - start), len);
                    pos = start;
                }
                String[] a = new String[len];
                for (int i = 0; i < len; i++) a[i] = readString(key);
                yield a;
            }
            case ARRAY -> {
                GGUFArray[] a = new GGUFArray[len];
                for (int i = 0; i < len; i++) a[i] = readArray(key, depth + 1);
                yield a;
            }
        };
        return values instanceof GGUFArray lazy ? lazy : new GGUFArray(et, values);
    }

    private void need(long bytes, String what) {
        if (bytes > segment.byteSize() - pos) {
            throw new GGUFFormatException("truncated GGUF file: " + what + " at byte " + pos + " needs " + bytes
                    + " bytes, only " + (segment.byteSize() - pos) + " left");
        }
    }

    private byte readByte(String what) {
        need(1, what);
        return segment.get(ValueLayout.JAVA_BYTE, pos++);
    }

    private boolean readBool(String what) {
        byte b = readByte(what);
        if (b != 0 && b != 1) {
            throw new GGUFFormatException("'" + what + "' is a bool with value " + b);
        }
        return b == 1;
    }

    private short readShort(String what) {
        need(2, what);
        short v = segment.get(U16, pos);
        pos += 2;
        return v;
    }

    private int readInt(String what) {
        need(4, what);
        int v = segment.get(U32, pos);
        pos += 4;
        return v;
    }

    private long readLong(String what) {
        need(8, what);
        long v = segment.get(U64, pos);
        pos += 8;
        return v;
    }

    private float readFloat(String what) {
        need(4, what);
        float v = segment.get(F32, pos);
        pos += 4;
        return v;
    }

    private double readDouble(String what) {
        need(8, what);
        double v = segment.get(F64, pos);
        pos += 8;
        return v;
    }

    private String readString(String what) {
        long len = stringLength(what);
        int n = (int) len;
        if (scratch.length < n) scratch = new byte[Math.max(n, 2 * scratch.length)];
        MemorySegment.copy(segment, ValueLayout.JAVA_BYTE, pos, scratch, 0, n);
        pos += len;
        return new String(scratch, 0, n, StandardCharsets.UTF_8);
    }

    private void skipString(String what) {
        long len = stringLength(what); // moves the cursor past the length: not "pos += stringLength(..)"
        pos += len;
    }

    /** Reads a string's length and checks that its bytes are in the file; the cursor is left on them. */
    private long stringLength(String what) {
        if (segment.byteSize() - pos < 8) need(8, "length of " + what); // the message only when it fails: 400,000 strings in a vocabulary
        long len = segment.get(U64, pos);
        pos += 8;
        if (len < 0 || len > segment.byteSize() - pos) {
            throw new GGUFFormatException("string " + what + " at byte " + (pos - 8) + " claims " + Long.toUnsignedString(len)
                    + " bytes, only " + (segment.byteSize() - pos) + " left");
        }
        if (len > Integer.MAX_VALUE - 8) {
            throw new GGUFFormatException("string " + what + " is too long: " + len);
        }
        return len;
    }

    static long alignUp(long v, long alignment) {
        return (v + alignment - 1) / alignment * alignment;
    }
}
