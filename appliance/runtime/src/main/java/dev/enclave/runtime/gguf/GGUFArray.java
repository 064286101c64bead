package dev.enclave.runtime.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Array;
import java.nio.charset.StandardCharsets;

/**
 * A metadata array. {@code values} is a primitive array matching the element type (byte[] for (U)INT8 and
 * BOOL as 0/1, short[] for (U)INT16, int[] for (U)INT32, long[] for (U)INT64, float[], double[],
 * String[], or GGUFArray[] for nested arrays). Unsigned values are kept in their signed Java container.
 *
 * <p>A long string array of a file that {@link GGUFFile} maps is decoded when first asked for, or when the file
 * closes: a vocabulary's 280,000 merges are a tenth of a second of a cold start, and a tokenizer whose merge table
 * comes from its cache never reads them. The parser has checked every string's length against the file already.
 */
public final class GGUFArray {

    private final GGUFValueType elementType;
    private volatile Object values;
    /** The encoded strings (count, then length-prefixed UTF-8 each) while not yet decoded; null once decoded. */
    private MemorySegment encoded;
    private final int count;

    public GGUFArray(GGUFValueType elementType, Object values) {
        this.elementType = elementType;
        this.values = java.util.Objects.requireNonNull(values);
        this.count = Array.getLength(values);
    }

    /** {@code count} strings encoded in {@code encoded}, bounds already checked, decoded on first use. */
    GGUFArray(MemorySegment encoded, int count) {
        this.elementType = GGUFValueType.STRING;
        this.encoded = encoded;
        this.count = count;
    }

    public GGUFValueType elementType() {
        return elementType;
    }

    public Object values() {
        Object v = values;
        if (v == null) {
            synchronized (this) {
                v = values;
                if (v == null) {
                    values = v = decode(encoded, count);
                    encoded = null;
                }
            }
        }
        return v;
    }

    private static String[] decode(MemorySegment encoded, int count) {
        byte[] bytes = encoded.toArray(ValueLayout.JAVA_BYTE); // one bulk copy, then plain array reads
        String[] a = new String[count];
        int p = 0;
        for (int i = 0; i < count; i++) {
            int len = (int) littleEndianLong(bytes, p);
            a[i] = new String(bytes, p + 8, len, StandardCharsets.UTF_8);
            p += 8 + len;
        }
        return a;
    }

    static long littleEndianLong(byte[] b, int p) {
        return (b[p] & 0xFFL) | (b[p + 1] & 0xFFL) << 8 | (b[p + 2] & 0xFFL) << 16 | (b[p + 3] & 0xFFL) << 24
                | (b[p + 4] & 0xFFL) << 32 | (b[p + 5] & 0xFFL) << 40 | (b[p + 6] & 0xFFL) << 48 | (b[p + 7] & 0xFFL) << 56;
    }

    public int length() {
        return count;
    }

    @Override
    public String toString() {
        return "GGUFArray[" + elementType + " x " + count + "]";
    }

    public String[] asStrings() {
        if (values() instanceof String[] s) {
            return s;
        }
        throw new GGUFFormatException("expected an array of strings, found an array of " + elementType);
    }

    public float[] asFloats() {
        return switch (values()) {
            case float[] f -> f;
            case double[] d -> {
                float[] r = new float[d.length];
                for (int i = 0; i < d.length; i++) r[i] = (float) d[i];
                yield r;
            }
            default -> {
                long[] l = asLongs();
                float[] r = new float[l.length];
                for (int i = 0; i < l.length; i++) r[i] = l[i];
                yield r;
            }
        };
    }

    /** Integer elements widened to int; unsigned 32-bit values above 2^31 become negative (as ids they mean "none"). */
    public int[] asInts() {
        if (values() instanceof int[] i) {
            return i;
        }
        long[] l = asLongs();
        int[] r = new int[l.length];
        for (int i = 0; i < l.length; i++) r[i] = (int) l[i];
        return r;
    }

    public long[] asLongs() {
        boolean unsigned = elementType == GGUFValueType.UINT8 || elementType == GGUFValueType.UINT16
                || elementType == GGUFValueType.UINT32;
        return switch (values()) {
            case long[] l -> l;
            case int[] a -> {
                long[] r = new long[a.length];
                for (int i = 0; i < a.length; i++) r[i] = unsigned ? Integer.toUnsignedLong(a[i]) : a[i];
                yield r;
            }
            case short[] a -> {
                long[] r = new long[a.length];
                for (int i = 0; i < a.length; i++) r[i] = unsigned ? Short.toUnsignedLong(a[i]) : a[i];
                yield r;
            }
            case byte[] a -> {
                long[] r = new long[a.length];
                for (int i = 0; i < a.length; i++) r[i] = unsigned ? Byte.toUnsignedLong(a[i]) : a[i];
                yield r;
            }
            default -> throw new GGUFFormatException("expected an array of integers, found an array of " + elementType);
        };
    }
}
