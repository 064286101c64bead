package dev.enclave.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Utf8StreamDecoderTest {

    @Test
    void holdsBackSplitCharacters() {
        Utf8StreamDecoder d = new Utf8StreamDecoder();
        byte[] llama = "🦙".getBytes(StandardCharsets.UTF_8);
        assertEquals("a", d.feed(new byte[] {'a', llama[0]}));
        assertEquals("", d.feed(new byte[] {llama[1], llama[2]}));
        assertEquals("🦙b", d.feed(new byte[] {llama[3], 'b'}));
        assertEquals("", d.flush());
    }

    @Test
    void replacesBytesThatCannotBeText() {
        Utf8StreamDecoder d = new Utf8StreamDecoder();
        assertEquals("\uFFFDx", d.feed(new byte[] {(byte) 0xFF, 'x'}));
        assertEquals("\uFFFDy", d.feed(new byte[] {(byte) 0xE2, 'y'}));      // truncated sequence
        assertEquals("\uFFFD", d.feed(new byte[] {(byte) 0xC0}));            // overlong lead byte
        assertEquals("", d.feed(new byte[] {(byte) 0xF0}));
        assertEquals("\uFFFD", d.flush());                                   // pending at the end
        assertEquals("\uFFFD\uFFFD", d.feed(new byte[] {(byte) 0xED, (byte) 0xA0})); // surrogate half
    }

    @Test
    void anySplitOfValidTextGivesTheSameText() {
        SplittableRandom r = new SplittableRandom(11);
        String text = "Grüße, 日本語, emoji 🦙🚀 and plain ASCII.";
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        for (int trial = 0; trial < 200; trial++) {
            Utf8StreamDecoder d = new Utf8StreamDecoder();
            StringBuilder out = new StringBuilder();
            int i = 0;
            while (i < b.length) {
                int n = Math.min(b.length - i, 1 + r.nextInt(5));
                byte[] piece = java.util.Arrays.copyOfRange(b, i, i + n);
                String s = d.feed(piece);
                assertTrue(s.chars().noneMatch(c -> c == 0xFFFD));
                out.append(s);
                i += n;
            }
            out.append(d.flush());
            assertEquals(text, out.toString());
        }
    }
}
