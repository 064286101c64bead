package dev.enclave.runtime.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GGUFFileTest {

    static byte[] sampleFile(int alignment) {
        GGUFWriter w = new GGUFWriter()
                .put("general.architecture", "llama")
                .put("general.alignment", new GGUFWriter.Typed(GGUFValueType.UINT32, alignment))
                .put("u8", new GGUFWriter.Typed(GGUFValueType.UINT8, 200))
                .put("i8", (byte) -5)
                .put("u16", new GGUFWriter.Typed(GGUFValueType.UINT16, 60000))
                .put("i16", (short) -300)
                .put("u32", new GGUFWriter.Typed(GGUFValueType.UINT32, 4000000000L))
                .put("i32", -7)
                .put("f32", 1.5f)
                .put("bool", true)
                .put("str", "héllo ▁ world")
                .put("u64", new GGUFWriter.Typed(GGUFValueType.UINT64, 1L << 40))
                .put("i64", -(1L << 40))
                .put("f64", Math.PI)
                .put("arr.str", new GGUFArray(GGUFValueType.STRING, new String[] {"a", "", "ß"}))
                .put("arr.f32", new GGUFArray(GGUFValueType.FLOAT32, new float[] {1f, -2f}))
                .put("arr.i32", new GGUFArray(GGUFValueType.INT32, new int[] {3, -4}))
                .put("arr.u8", new GGUFArray(GGUFValueType.UINT8, new byte[] {(byte) 255, 1}))
                .put("arr.bool", new GGUFArray(GGUFValueType.BOOL, new byte[] {1, 0}))
                .put("arr.u64", new GGUFArray(GGUFValueType.UINT64, new long[] {5, 6}))
                .put("arr.f64", new GGUFArray(GGUFValueType.FLOAT64, new double[] {0.25}))
                .put("arr.i16", new GGUFArray(GGUFValueType.INT16, new short[] {-1}))
                .put("arr.nested", new GGUFArray(GGUFValueType.ARRAY, new GGUFArray[] {
                        new GGUFArray(GGUFValueType.INT32, new int[] {1, 2}), new GGUFArray(GGUFValueType.STRING, new String[] {"x"})}));
        float[] a = new float[32];
        float[] b = new float[64];
        for (int i = 0; i < a.length; i++) a[i] = i * 0.5f;
        for (int i = 0; i < b.length; i++) b[i] = -i;
        w.tensor("a", a, 32).tensor("b", b, 32, 2);
        short[] half = new short[32];
        for (int i = 0; i < half.length; i++) half[i] = Float.floatToFloat16(i / 4f);
        w.tensor("h", GGMLType.F16, MemorySegment.ofArray(half), 32);
        return w.toBytes();
    }

    @Test
    void readsEveryMetadataTypeAndTensor() {
        try (GGUFFile f = GGUFFile.read(sampleFile(32))) {
            assertEquals(3, f.version());
            assertEquals(200L, f.getLong("u8"));
            assertEquals(-5L, f.getLong("i8"));
            assertEquals(60000L, f.getLong("u16"));
            assertEquals(-300L, f.getLong("i16"));
            assertEquals(4000000000L, f.getLong("u32"));
            assertEquals(-7, f.getInt("i32"));
            assertEquals(1.5f, f.getFloat("f32"));
            assertTrue(f.getBoolean("bool", false));
            assertEquals("héllo ▁ world", f.getString("str"));
            assertEquals(1L << 40, f.getLong("u64"));
            assertEquals(-(1L << 40), f.getLong("i64"));
            assertEquals(Math.PI, (Double) f.metadata().get("f64"));
            assertArrayEquals(new String[] {"a", "", "ß"}, f.getArray("arr.str").asStrings());
            assertArrayEquals(new float[] {1f, -2f}, f.getArray("arr.f32").asFloats());
            assertArrayEquals(new int[] {3, -4}, f.getArray("arr.i32").asInts());
            assertArrayEquals(new long[] {255, 1}, f.getArray("arr.u8").asLongs());
            assertArrayEquals(new long[] {5, 6}, f.getArray("arr.u64").asLongs());
            assertArrayEquals(new long[] {-1}, f.getArray("arr.i16").asLongs());
            GGUFArray[] nested = (GGUFArray[]) f.getArray("arr.nested").values();
            assertArrayEquals(new int[] {1, 2}, nested[0].asInts());
            assertArrayEquals(new String[] {"x"}, nested[1].asStrings());
            assertThrows(GGUFFormatException.class, () -> f.getString("i32"));
            assertThrows(GGUFFormatException.class, () -> f.getLong("missing"));

            GGUFTensorInfo b = f.tensor("b");
            assertArrayEquals(new long[] {32, 2}, b.dims());
            assertEquals(32, b.rowLength());
            assertEquals(2, b.rows());
            MemorySegment data = f.tensorData(b);
            assertEquals(-63f, data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 63));
            var h = dev.enclave.runtime.tensor.FloatTensor.of(GGMLType.F16, f.tensorData(f.tensor("h")), 32);
            assertEquals(31 / 4f, h.getFloat(31));
        }
    }

    @Test
    void longStringArraysReadBackAfterTheirChecks() {
        SplittableRandom r = new SplittableRandom(3);
        String[] strings = new String[5000]; // long enough to be decoded on first use
        String alphabet = "aZ ▁ßé日本🦙\n";
        for (int i = 0; i < strings.length; i++) {
            StringBuilder s = new StringBuilder();
            int n = r.nextInt(12);
            for (int k = 0; k < n; k++) s.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0, r.nextInt(alphabet.codePointCount(0, alphabet.length())))));
            strings[i] = s.toString();
        }
        byte[] bytes = new GGUFWriter().put("general.architecture", "llama")
                .put("long", new GGUFArray(GGUFValueType.STRING, strings)).put("after", 7).toBytes();
        try (GGUFFile f = GGUFFile.read(bytes)) {
            assertEquals(strings.length, f.getArray("long").length());
            assertEquals(7, f.getInt("after"));
            assertArrayEquals(strings, f.getArray("long").asStrings());
            assertTrue(f.getArray("long").values() == f.getArray("long").values(), "decoded once");
        }
        GGUFArray unread;
        try (GGUFFile f = GGUFFile.read(bytes)) {
            unread = f.getArray("long");
        }
        assertArrayEquals(strings, unread.asStrings(), "read once the file is closed");
        // a string in the middle claiming more bytes than the file has fails the parse, not a later read
        int at = indexOf(bytes, strings[2500].getBytes(java.nio.charset.StandardCharsets.UTF_8), strings[2499], strings[2500]);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(at - 8, bytes.length);
        GGUFFormatException e = assertThrows(GGUFFormatException.class, () -> GGUFFile.read(bytes));
        assertTrue(e.getMessage().contains("string long"), e.getMessage());
    }

    /** Where the bytes of {@code next} start, found as the string after {@code prev}'s length-prefixed bytes. */
    private static int indexOf(byte[] file, byte[] ignored, String prev, String next) {
        byte[] p = prev.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] n = next.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 8; i + p.length + 8 + n.length <= file.length; i++) {
            if (b.getLong(i - 8) == p.length && Arrays.equals(file, i, i + p.length, p, 0, p.length)
                    && b.getLong(i + p.length) == n.length && Arrays.equals(file, i + p.length + 8, i + p.length + 8 + n.length, n, 0, n.length)) {
                return i + p.length + 8;
            }
        }
        throw new AssertionError("not found");
    }

    @Test
    void honoursAlignment() {
        for (int alignment : new int[] {1, 8, 64, 4096}) {
            try (GGUFFile f = GGUFFile.read(sampleFile(alignment))) {
                assertEquals(alignment, f.alignment());
                assertEquals(0, f.dataStart() % alignment);
                for (GGUFTensorInfo t : f.tensors().values()) assertEquals(0, t.offset() % alignment);
                assertEquals(15.5f, f.tensorData(f.tensor("a")).getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 31));
            }
        }
    }

    @Test
    void readsTheRealModelFile() throws Exception {
        try (GGUFFile f = GGUFFile.open(SharedData.model("stories260K.gguf"))) {
            assertEquals("llama", f.getString("general.architecture"));
            assertEquals(512, f.getArray("tokenizer.ggml.tokens").length());
            assertEquals(48, f.tensors().size());
            assertEquals(GGMLType.F32, f.tensor("token_embd.weight").type());
        }
    }

    @Test
    void everyTruncationFailsCleanly() {
        byte[] full = sampleFile(32);
        for (int n = 0; n < full.length; n++) {
            byte[] cut = Arrays.copyOf(full, n);
            GGUFFormatException e = assertThrows(GGUFFormatException.class, () -> GGUFFile.read(cut).close(), "prefix " + n);
            assertTrue(e.getMessage() != null && !e.getMessage().isBlank());
        }
    }

    /** Random corruption of a real file: it either still parses or fails with a GGUFFormatException, nothing else. */
    @Test
    void randomCorruptionNeverEscapesAsAnotherError() throws Exception {
        byte[] real = Files.readAllBytes(SharedData.model("stories260K.gguf"));
        int headerEnd = 0;
        try (GGUFFile f = GGUFFile.read(real)) {
            headerEnd = (int) f.dataStart();
        }
        SplittableRandom rnd = new SplittableRandom(2026);
        byte[] sample = sampleFile(32);
        for (int iter = 0; iter < 3000; iter++) {
            byte[] src = iter % 2 == 0 ? real : sample;
            byte[] b = src.clone();
            int limit = src == real ? headerEnd : b.length;
            int flips = 1 + rnd.nextInt(4);
            for (int k = 0; k < flips; k++) {
                int at = rnd.nextInt(limit);
                switch (rnd.nextInt(3)) {
                    case 0 -> b[at] = (byte) rnd.nextInt(256);
                    case 1 -> b[at] = (byte) 0xFF;
                    default -> b[at] ^= (byte) (1 << rnd.nextInt(8));
                }
            }
            try (GGUFFile f = GGUFFile.read(b)) {
                for (GGUFTensorInfo t : f.tensors().values()) f.tensorData(t); // every slice must be in bounds
            } catch (GGUFFormatException expected) {
                // fine: a clear refusal
            }
        }
    }

    @Test
    void hostileHeadersAreRefusedWithClearMessages() {
        assertMessage(header(0x12345678, 3, 0, 0), "not a GGUF file");
        assertMessage(header(GGUFFile.MAGIC, 1, 0, 0), "version 1");
        assertMessage(header(GGUFFile.MAGIC, 0x03000000, 0, 0), "big-endian");
        assertMessage(header(GGUFFile.MAGIC, 3, Long.MAX_VALUE, 0), "tensor count");
        assertMessage(header(GGUFFile.MAGIC, 3, 0, 1L << 60), "metadata count");
        // a metadata key claiming an enormous length
        ByteBuffer bb = le(64).putInt(GGUFFile.MAGIC).putInt(3).putLong(0).putLong(1).putLong(1L << 50);
        assertMessage(bb.array(), "claims");
        // an array claiming more elements than the file has bytes
        bb = le(64).putInt(GGUFFile.MAGIC).putInt(3).putLong(0).putLong(1).putLong(1).put((byte) 'k')
                .putInt(GGUFValueType.ARRAY.ordinal()).putInt(GGUFValueType.INT32.ordinal()).putLong(1L << 40);
        assertMessage(bb.array(), "cannot fit");
        // unknown value type
        bb = le(64).putInt(GGUFFile.MAGIC).putInt(3).putLong(0).putLong(1).putLong(1).put((byte) 'k').putInt(99);
        assertMessage(bb.array(), "unknown value type");
        // a tensor whose data lies past the end of the file
        bb = le(128).putInt(GGUFFile.MAGIC).putInt(3).putLong(1).putLong(0).putLong(1).put((byte) 't')
                .putInt(1).putLong(32).putInt(GGMLType.F32.id).putLong(1L << 20);
        assertMessage(Arrays.copyOf(bb.array(), 128), "beyond the end");
        // a tensor with too many dimensions
        bb = le(128).putInt(GGUFFile.MAGIC).putInt(3).putLong(1).putLong(0).putLong(1).put((byte) 't').putInt(5);
        assertMessage(Arrays.copyOf(bb.array(), 128), "dimensions");
        // element count overflow
        bb = le(128).putInt(GGUFFile.MAGIC).putInt(3).putLong(1).putLong(0).putLong(1).put((byte) 't')
                .putInt(3).putLong(1L << 40).putLong(1L << 40).putLong(1L << 40);
        assertMessage(Arrays.copyOf(bb.array(), 128), "overflows");
        // a misaligned tensor offset
        bb = le(160).putInt(GGUFFile.MAGIC).putInt(3).putLong(1).putLong(0).putLong(1).put((byte) 't')
                .putInt(1).putLong(4).putInt(GGMLType.F32.id).putLong(4);
        assertMessage(Arrays.copyOf(bb.array(), 160), "not aligned");
    }

    @Test
    void mapsTensorsBeyondTwoGigabytes(@TempDir Path dir) throws Exception {
        // A sparse file: one small tensor, then one placed past the 2 GiB mark.
        long far = (1L << 31) + 4096;
        GGUFWriter w = new GGUFWriter().put("general.architecture", "test");
        byte[] head = w.toBytes();
        // Build the header by hand so that the second tensor's offset is beyond 2^31.
        ByteBuffer bb = le(256).putInt(GGUFFile.MAGIC).putInt(3).putLong(2).putLong(0);
        bb.putLong(4).put("near".getBytes()).putInt(1).putLong(8).putInt(GGMLType.F32.id).putLong(0);
        bb.putLong(3).put("far".getBytes()).putInt(1).putLong(8).putInt(GGMLType.F32.id).putLong(far);
        long dataStart = GGUFFile.alignUp(bb.position(), 32);
        Path p = dir.resolve("big.gguf");
        try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
            raf.write(bb.array(), 0, bb.position());
            raf.setLength(dataStart + far + 32);
            raf.seek(dataStart + far);
            ByteBuffer vals = le(32);
            for (int i = 0; i < 8; i++) vals.putFloat(i + 0.25f);
            raf.write(vals.array());
        }
        assertTrue(head.length > 0);
        try (GGUFFile f = GGUFFile.open(p)) {
            assertTrue(f.fileSize() > (1L << 31));
            MemorySegment t = f.tensorData(f.tensor("far"));
            assertEquals(7.25f, t.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 7));
            assertEquals(0f, f.tensorData(f.tensor("near")).getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
        }
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static byte[] header(int magic, int version, long tensors, long kvs) {
        return le(24).putInt(magic).putInt(version).putLong(tensors).putLong(kvs).array();
    }

    private static void assertMessage(byte[] file, String expected) {
        GGUFFormatException e = assertThrows(GGUFFormatException.class, () -> GGUFFile.read(file).close());
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' should mention '" + expected + "'");
    }
}
