package dev.enclave.runtime.gguf;

import java.lang.reflect.Array;

/**
 * A metadata array. {@code values} is a primitive array matching the element type (byte[] for (U)INT8 and
 * BOOL as 0/1, short[] for (U)INT16, int[] for (U)INT32, long[] for (U)INT64, float[], double[],
 * String[], or GGUFArray[] for nested arrays). Unsigned values are kept in their signed Java container.
 */
public record GGUFArray(GGUFValueType elementType, Object values) {

    public int length() {
        return Array.getLength(values);
    }

    public String[] asStrings() {
        if (values instanceof String[] s) {
            return s;
        }
        throw new GGUFFormatException("expected an array of strings, found an array of " + elementType);
    }

    public float[] asFloats() {
        return switch (values) {
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
        if (values instanceof int[] i) {
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
        return switch (values) {
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
