package dev.enclave.runtime.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * A byte-level BPE vocabulary's merge table resolved to token ids ({@link MergeRanks}), kept on disk beside the
 * repacked tensors so that the next start reads two arrays instead of resolving 280,000 merge strings (the slowest
 * part of loading Llama 3's tokenizer, on the way to the first token).
 *
 * <p>One file per model file: the header names the model file's path, size and modification time, the vocabulary's
 * and the merges' counts and the table's size; the arrays follow, little-endian; a CRC32C of everything ends it.
 * Anything that does not match and the file is ignored and rewritten. Written on a background thread to a temporary
 * name, forced to disk and renamed into place, so a crash leaves the old file or none.
 */
public final class MergeTableCache {

    private static final byte[] MAGIC = "ENCLAVE-MERGES-1".getBytes(StandardCharsets.US_ASCII);

    private final Path file;
    private final String modelPath;
    private final long modelSize;
    private final long modelMtime;

    private MergeTableCache(Path file, Path model) throws IOException {
        this.file = file;
        this.modelPath = model.toString();
        this.modelSize = Files.size(model);
        this.modelMtime = Files.getLastModifiedTime(model).toMillis();
    }

    /** The cache for {@code model}'s merge table in {@code dir}; null when either is null or the model cannot be read. */
    public static MergeTableCache of(Path dir, Path model) {
        if (dir == null || model == null) return null;
        try {
            Path abs = model.toAbsolutePath().normalize();
            return new MergeTableCache(dir.resolve(Integer.toHexString(abs.toString().hashCode()) + "-" + abs.getFileName() + ".merges"), abs);
        } catch (IOException | RuntimeException e) {
            return null; // an optimization: without it the merges are resolved as usual
        }
    }

    Path file() {
        return file;
    }

    /** The stored table for a vocabulary of {@code tokens} tokens and {@code merges} merges, or null. */
    MergeRanks load(int tokens, int merges) {
        try {
            if (!Files.isRegularFile(file) || Files.size(file) > 1L << 30) return null;
            byte[] bytes = Files.readAllBytes(file);
            if (bytes.length < MAGIC.length + 8) return null;
            CRC32C crc = new CRC32C();
            crc.update(bytes, 0, bytes.length - 8);
            ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            if (in.getLong(bytes.length - 8) != crc.getValue()) return null;
            for (byte b : MAGIC) if (in.get() != b) return null;
            byte[] path = new byte[in.getInt()];
            in.get(path);
            if (!new String(path, StandardCharsets.UTF_8).equals(modelPath) || in.getLong() != modelSize
                    || in.getLong() != modelMtime || in.getInt() != tokens || in.getInt() != merges) {
                return null;
            }
            int size = in.getInt();
            int capacity = in.getInt();
            if (capacity <= 0 || (long) capacity * 12 != in.remaining() - 8) return null;
            long[] keys = new long[capacity];
            int[] ranks = new int[capacity];
            in.asLongBuffer().get(keys);
            in.position(in.position() + capacity * 8);
            in.asIntBuffer().get(ranks);
            int used = 0;
            for (long k : keys) if (k != -1L) used++;
            if (used != size) return null; // lookups stop at an empty slot: the count must be the stored one
            return new MergeRanks(keys, ranks, size);
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** Writes {@code table} on a background thread; returns it (for tests), or null when it could not start. */
    Thread storeInBackground(MergeRanks table, int tokens, int merges) {
        try {
            return Thread.ofPlatform().daemon().name("enclave-merges-cache").start(() -> {
                try {
                    store(table, tokens, merges);
                } catch (IOException | RuntimeException e) {
                    System.err.println("enclave: could not write the tokenizer cache " + file + ": " + e.getMessage());
                }
            });
        } catch (RuntimeException | OutOfMemoryError e) {
            return null;
        }
    }

    void store(MergeRanks table, int tokens, int merges) throws IOException {
        long[] keys = table.keys();
        int[] ranks = table.ranks();
        byte[] path = modelPath.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(MAGIC.length + 4 + path.length + 8 + 8 + 4 * 4 + keys.length * 12 + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).putInt(path.length).put(path).putLong(modelSize).putLong(modelMtime).putInt(tokens).putInt(merges)
                .putInt(table.size()).putInt(keys.length);
        b.asLongBuffer().put(keys);
        b.position(b.position() + keys.length * 8);
        b.asIntBuffer().put(ranks);
        b.position(b.position() + ranks.length * 4);
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putLong(crc.getValue());
        b.flip();
        Files.createDirectories(file.getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            while (b.hasRemaining()) ch.write(b);
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
