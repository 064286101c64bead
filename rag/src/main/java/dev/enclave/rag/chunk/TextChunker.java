package dev.enclave.rag.chunk;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits text into overlapping chunks of at most {@code maxChars}, cutting at the best boundary available near
 * the limit (paragraph, then sentence, then word) so that a chunk rarely ends mid-sentence. Every chunk keeps its
 * character offsets in the source, which is what citations point back to.
 */
public final class TextChunker {

    /** A piece of the source text: {@code text == source.substring(start, end)}. */
    public record Chunk(int index, int start, int end, String text) {
    }

    private final int maxChars;
    private final int overlapChars;

    public TextChunker(int maxChars, int overlapChars) {
        if (maxChars < 16) throw new IllegalArgumentException("maxChars must be at least 16");
        if (overlapChars < 0 || overlapChars >= maxChars / 2) {
            throw new IllegalArgumentException("overlapChars must be in [0, maxChars / 2)");
        }
        this.maxChars = maxChars;
        this.overlapChars = overlapChars;
    }

    public List<Chunk> split(String text) {
        List<Chunk> chunks = new ArrayList<>();
        int start = skipSpace(text, 0);
        while (start < text.length()) {
            int limit = Math.min(text.length(), start + maxChars);
            int end = limit == text.length() ? limit : boundary(text, start, limit);
            int trimmedEnd = end;
            while (trimmedEnd > start && Character.isWhitespace(text.charAt(trimmedEnd - 1))) trimmedEnd--;
            if (trimmedEnd > start) {
                chunks.add(new Chunk(chunks.size(), start, trimmedEnd, text.substring(start, trimmedEnd)));
            }
            if (end >= text.length()) break;
            int next = Math.max(start + 1, end - overlapChars);
            // start the overlap at a word boundary
            while (next > start + 1 && next < end && !Character.isWhitespace(text.charAt(next - 1))) next++;
            start = skipSpace(text, next);
        }
        return chunks;
    }

    private int boundary(String text, int start, int limit) {
        int floor = start + maxChars / 2; // never cut so early that chunks become tiny
        int p = text.lastIndexOf("\n\n", limit - 1);
        if (p >= floor) return p + 2;
        for (int i = limit - 1; i >= floor; i--) {
            char c = text.charAt(i);
            if ((c == '.' || c == '!' || c == '?') && i + 1 < text.length() && Character.isWhitespace(text.charAt(i + 1))) {
                return i + 1;
            }
        }
        for (int i = limit - 1; i >= floor; i--) {
            if (Character.isWhitespace(text.charAt(i))) return i + 1;
        }
        return limit;
    }

    private static int skipSpace(String text, int i) {
        while (i < text.length() && Character.isWhitespace(text.charAt(i))) i++;
        return i;
    }
}
