package dev.enclave.server.cli;

/** Minimal JSON writing for the CLI's --json outputs (stable, dependency-free, float32-exact numbers). */
final class Json {

    private Json() {
    }

    static String string(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
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
