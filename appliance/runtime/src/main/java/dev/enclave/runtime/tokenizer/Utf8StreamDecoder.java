package dev.enclave.runtime.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * Turns a stream of token pieces (bytes) into text that is always valid UTF-8: bytes of a character split across
 * tokens are held back until the character is complete; bytes that can never form a character become U+FFFD.
 */
public final class Utf8StreamDecoder {

    private final byte[] pending = new byte[4];
    private int pendingLength;
    private final StringBuilder out = new StringBuilder();

    /** Appends {@code bytes}; returns the text that became complete (possibly empty). */
    public String feed(byte[] bytes) {
        out.setLength(0);
        for (byte b : bytes) {
            accept(b);
        }
        return out.toString();
    }

    /** Text still held back, rendered with replacement characters; resets the decoder. */
    public String flush() {
        out.setLength(0);
        for (int i = 0; i < pendingLength; i++) {
            out.append('\uFFFD');
        }
        pendingLength = 0;
        return out.toString();
    }

    private void accept(byte b) {
        int c = b & 0xFF;
        if (pendingLength == 0) {
            int need = expectedLength(c);
            if (need == 1) {
                out.append((char) c);
            } else if (need == 0) {
                out.append('\uFFFD');
            } else {
                pending[pendingLength++] = b;
            }
            return;
        }
        if ((c & 0xC0) != 0x80 || !secondByteOk(pending[0] & 0xFF, c, pendingLength)) {
            // the held-back sequence is broken: emit a replacement for it and start over with this byte
            out.append('\uFFFD');
            pendingLength = 0;
            accept(b);
            return;
        }
        pending[pendingLength++] = b;
        if (pendingLength == expectedLength(pending[0] & 0xFF)) {
            out.append(new String(pending, 0, pendingLength, StandardCharsets.UTF_8));
            pendingLength = 0;
        }
    }

    private static int expectedLength(int first) {
        if (first < 0x80) return 1;
        if (first >= 0xC2 && first < 0xE0) return 2;
        if (first >= 0xE0 && first < 0xF0) return 3;
        if (first >= 0xF0 && first < 0xF5) return 4;
        return 0;
    }

    /** Rejects overlong forms, surrogates and code points above U+10FFFF at the second byte. */
    private static boolean secondByteOk(int first, int c, int index) {
        if (index != 1) return true;
        if (first == 0xE0) return c >= 0xA0;
        if (first == 0xED) return c < 0xA0;
        if (first == 0xF0) return c >= 0x90;
        if (first == 0xF4) return c < 0x90;
        return true;
    }
}
