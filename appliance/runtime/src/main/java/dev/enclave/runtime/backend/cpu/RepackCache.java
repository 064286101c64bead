package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.tensor.RowGroupTensor;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The tensors a model repacks at load ({@link RowGroupTensor} for the Java kernels, {@link NativeRepackedTensor}
 * for the native ones), kept on disk so that the next start maps them
 * instead of repacking them (a second or more of both cores for a 1B model, on the way to the first token).
 *
 * <p>One file per model file, in the directory {@link dev.enclave.runtime.RuntimeOptions#repackCacheDir} (the server
 * sets it to {@code DATA_DIR/cache}; null, nothing is cached). The header names the model file's path, size and modification
 * time and every tensor's kind, type, shape and segments, and ends with a CRC32C of itself; segments are page-aligned
 * raw memory. A load that repacked anything writes the file in the background to a temporary name, forces it to disk
 * and renames it into place, so a crash leaves either the old file or none. A header that does not match, or any
 * damage the header check or the segment sizes reveal, and the file is ignored and rewritten.
 *
 * <p>A tensor may be stored in more than one kind (the vocabulary matrix is int8 for a server batching many
 * sequences and 6-bit for a single one): the file keeps every kind it holds, so switching between the two maps
 * instead of repacking and rewriting the whole file each time.
 */
final class RepackCache {

    /**
     * The format's version, bumped whenever a kind's layout changes (the kind names a class and group size, not a
     * layout): 3 interleaves the rows of Q8_0's lines; 4 may hold a tensor under several kinds. An older file is
     * ignored and rewritten.
     */
    private static final byte[] MAGIC = "ENCLAVE-REPACK-4".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    private static final long ALIGN = 4096;

    private record Entry(String name, String kind, GGMLType source, int rows, int cols, long[] offsets, long[] lengths) {
    }

    /** A repacked tensor as the cache keeps it: its kind (names the layout), source type, shape and memory. */
    record Stored(String kind, GGMLType source, int rows, int cols, MemorySegment[] segments) {
        Stored(RowGroupTensor t) {
            this(t.kind(), t.type(), t.rows(), t.cols(), t.segments());
        }
    }

    /** A tensor's place in the file, and in the maps below: its name and its kind. */
    private static String key(String name, String kind) {
        return name + '\u0000' + kind;
    }

    private final Path file;
    private final String modelPath;
    private final long modelSize;
    private final long modelMtime;
    private final Map<String, Entry> stored = new LinkedHashMap<>(); // by key(name, kind)
    private MemorySegment mapped;
    private final Map<String, Stored> fresh = new LinkedHashMap<>(); // by key(name, kind)
    private final Map<String, Stored> all = new LinkedHashMap<>(); // by key(name, kind)

    private RepackCache(Path file, Path model) throws IOException {
        this.file = file;
        this.modelPath = model.toAbsolutePath().normalize().toString();
        this.modelSize = Files.size(model);
        this.modelMtime = Files.getLastModifiedTime(model).toMillis();
    }

    /** The cache for {@code model}, its stored tensors mapped into {@code arena}; null when caching is off. */
    static RepackCache open(Path dir, Path model, Arena arena) {
        if (dir == null || model == null) return null;
        try {
            Path abs = model.toAbsolutePath().normalize();
            String key = Integer.toHexString(abs.toString().hashCode()) + "-" + abs.getFileName();
            RepackCache c = new RepackCache(dir.resolve(key + ".repack"), model);
            c.load(arena);
            return c;
        } catch (IOException | RuntimeException e) {
            return null; // a cache is an optimization: without one the model repacks as usual
        }
    }

    private void load(Arena arena) {
        if (!Files.isRegularFile(file)) return;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer head = ByteBuffer.allocate((int) Math.min(size, 1 << 20));
            ch.read(head, 0);
            byte[] bytes = Arrays.copyOf(head.array(), head.position());
            DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes));
            byte[] magic = in.readNBytes(MAGIC.length);
            if (!Arrays.equals(magic, MAGIC)) return;
            if (!in.readUTF().equals(modelPath) || in.readLong() != modelSize || in.readLong() != modelMtime) return;
            int n = in.readInt();
            Map<String, Entry> entries = new LinkedHashMap<>();
            for (int i = 0; i < n; i++) {
                String name = in.readUTF();
                String kind = in.readUTF();
                GGMLType source = GGMLType.valueOf(in.readUTF());
                int rows = in.readInt();
                int cols = in.readInt();
                int segs = in.readInt();
                if (segs < 0 || segs > 8) return;
                long[] offsets = new long[segs];
                long[] lengths = new long[segs];
                for (int s = 0; s < segs; s++) {
                    offsets[s] = in.readLong();
                    lengths[s] = in.readLong();
                    if (offsets[s] >= 0 && (lengths[s] < 0 || offsets[s] + lengths[s] > size)) return;
                }
                entries.put(key(name, kind), new Entry(name, kind, source, rows, cols, offsets, lengths));
            }
            int headerLength = bytes.length - in.available();
            CRC32C crc = new CRC32C();
            crc.update(bytes, 0, headerLength);
            if (in.readLong() != crc.getValue()) return;
            mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            stored.putAll(entries);
        } catch (IOException | RuntimeException e) {
            stored.clear(); // damaged: ignored, and rewritten after this load
        }
    }

    /** The stored row-group tensor {@code name} if the cache holds one of this kind, source type and shape, else null. */
    RowGroupTensor get(String name, String kind, GGMLType source, int rows, int cols) {
        MemorySegment[] segs = segments(name, kind, source, rows, cols);
        if (segs == null) return null;
        try {
            return RowGroupTensor.fromSegments(kind, source, segs, rows, cols);
        } catch (RuntimeException damaged) {
            all.remove(key(name, kind));
            return null;
        }
    }

    /**
     * The memory of the stored tensor {@code name} if the cache holds one of this kind, source type and shape, else
     * null; the caller checks that the segments make a tensor of that kind.
     */
    MemorySegment[] segments(String name, String kind, GGMLType source, int rows, int cols) {
        Entry e = stored.get(key(name, kind));
        if (e == null || e.source != source || e.rows != rows || e.cols != cols) return null;
        Stored t = mappedTensor(e);
        if (t != null) all.put(key(name, kind), t);
        return t == null ? null : t.segments();
    }

    private Stored mappedTensor(Entry e) {
        try {
            MemorySegment[] segs = new MemorySegment[e.offsets.length];
            for (int s = 0; s < segs.length; s++) segs[s] = e.offsets[s] < 0 ? null : mapped.asSlice(e.offsets[s], e.lengths[s]);
            return new Stored(e.kind, e.source, e.rows, e.cols, segs);
        } catch (RuntimeException damaged) {
            return null;
        }
    }

    /** Records a row-group tensor repacked by this load, to be written with the others. */
    void put(String name, RowGroupTensor t) {
        put(name, new Stored(t));
    }

    /** Records a tensor repacked by this load, to be written with the others. */
    void put(String name, Stored t) {
        fresh.put(key(name, t.kind()), t);
        all.put(key(name, t.kind()), t);
    }

    /**
     * Writes every tensor of this load (stored ones included) to a new cache file, on a background thread, when this
     * load repacked any; returns the thread, or null when there was nothing to write. Stored tensors of a kind this
     * load did not use are copied over from the old file (still mapped: the rename does not unmap it).
     */
    Thread writeInBackground() {
        if (fresh.isEmpty()) return null;
        Map<String, Stored> tensors = new LinkedHashMap<>(all);
        for (Map.Entry<String, Entry> e : stored.entrySet()) {
            if (tensors.containsKey(e.getKey())) continue;
            Stored t = mappedTensor(e.getValue());
            if (t != null) tensors.put(e.getKey(), t);
        }
        return Thread.ofPlatform().daemon().name("enclave-repack-cache").start(() -> {
            try {
                write(tensors);
            } catch (IOException | RuntimeException e) {
                System.err.println("enclave: could not write the repack cache " + file + ": " + e.getMessage());
            }
        });
    }

    private void write(Map<String, Stored> tensors) throws IOException {
        Files.createDirectories(file.getParent());
        byte[] header = header(tensors, 0);
        long start = align(header.length);
        header = header(tensors, start);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(header), 0);
            long pos = start;
            for (Stored t : tensors.values()) {
                for (MemorySegment s : t.segments()) {
                    if (s == null) continue;
                    for (long o = 0; o < s.byteSize(); o += 1 << 30) {
                        ByteBuffer b = s.asSlice(o, Math.min(1 << 30, s.byteSize() - o)).asByteBuffer();
                        long at = pos + o;
                        while (b.hasRemaining()) at += ch.write(b, at);
                    }
                    pos = align(pos + s.byteSize());
                }
            }
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private byte[] header(Map<String, Stored> tensors, long start) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.write(MAGIC);
        out.writeUTF(modelPath);
        out.writeLong(modelSize);
        out.writeLong(modelMtime);
        out.writeInt(tensors.size());
        long pos = start;
        for (Map.Entry<String, Stored> e : tensors.entrySet()) {
            Stored t = e.getValue();
            out.writeUTF(e.getKey().substring(0, e.getKey().indexOf('\u0000')));
            out.writeUTF(t.kind());
            out.writeUTF(t.source().name());
            out.writeInt(t.rows());
            out.writeInt(t.cols());
            MemorySegment[] segs = t.segments();
            out.writeInt(segs.length);
            for (MemorySegment s : segs) {
                out.writeLong(s == null ? -1 : pos);
                out.writeLong(s == null ? 0 : s.byteSize());
                if (s != null) pos = align(pos + s.byteSize());
            }
        }
        out.flush();
        CRC32C crc = new CRC32C();
        crc.update(bytes.toByteArray());
        out.writeLong(crc.getValue());
        out.flush();
        return bytes.toByteArray();
    }

    private static long align(long v) {
        return (v + ALIGN - 1) / ALIGN * ALIGN;
    }

    Path file() {
        return file;
    }
}
