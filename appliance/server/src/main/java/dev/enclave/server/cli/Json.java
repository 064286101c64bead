package dev.enclave.server.cli;

/** JSON writing for the CLI's --json outputs: stable field order and float32-exact numbers. */
final class Json {

    private Json() {
    }

    /** A JSON string literal (Jackson's escaping). */
    static String string(String s) {
        return '"' + new String(com.fasterxml.jackson.core.io.JsonStringEncoder.getInstance().quoteAsString(s)) + '"';
    }

    static String ints(int[] a) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < a.length; i++) {
            if (i > 0) sb.append(',');
            sb.append(a[i]);
        }
        return sb.append(']').toString();
    }

    /** Shortest decimal that reads back as the same float32; non-finite values become null. */
    static String floats(float[] a) {
        StringBuilder sb = new StringBuilder(a.length * 12).append('[');
        for (int i = 0; i < a.length; i++) {
            if (i > 0) sb.append(',');
            float f = a[i];
            sb.append(Float.isFinite(f) ? Float.toString(f) : "null");
        }
        return sb.append(']').toString();
    }
}
