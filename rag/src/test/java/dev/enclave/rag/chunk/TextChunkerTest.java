package dev.enclave.rag.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TextChunkerTest {

    @Test
    void prefersSentenceBoundariesAndKeepsOffsets() {
        String text = "First sentence here. Second sentence is a bit longer. Third one ends it.";
        List<TextChunker.Chunk> chunks = new TextChunker(30, 0).split(text);
        assertEquals("First sentence here.", chunks.get(0).text());
        for (TextChunker.Chunk c : chunks) {
            assertEquals(text.substring(c.start(), c.end()), c.text());
            assertTrue(c.text().length() <= 30);
        }
    }

    @Test
    void randomTextIsCoveredCompletelyWithinBounds() {
        SplittableRandom r = new SplittableRandom(5);
        for (int trial = 0; trial < 50; trial++) {
            StringBuilder sb = new StringBuilder();
            int words = 50 + r.nextInt(500);
            for (int w = 0; w < words; w++) {
                sb.append("w".repeat(1 + r.nextInt(12)));
                sb.append(switch (r.nextInt(10)) { case 0 -> ". "; case 1 -> "\n\n"; default -> " "; });
            }
            String text = sb.toString();
            int max = 40 + r.nextInt(200);
            List<TextChunker.Chunk> chunks = new TextChunker(max, max / 5).split(text);
            int covered = 0;
            for (TextChunker.Chunk c : chunks) {
                assertTrue(c.text().length() <= max);
                assertTrue(c.start() <= covered || text.substring(covered, c.start()).isBlank(), "gap before chunk " + c.index());
                assertEquals(text.substring(c.start(), c.end()), c.text());
                covered = Math.max(covered, c.end());
            }
            assertEquals(text.strip().length(), text.substring(0, covered).strip().length(), "text not fully covered");
        }
    }
}
