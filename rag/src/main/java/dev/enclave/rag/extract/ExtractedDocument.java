package dev.enclave.rag.extract;

import java.util.List;

/**
 * A document's text as one string, with the page ranges and headings found in it. Offsets are char indexes
 * into {@link #text()}: chunks and citations point back through them.
 */
public record ExtractedDocument(String title, String mediaType, String text, List<Page> pages, List<Heading> headings) {

    public record Page(int number, int start, int end) {
    }

    public record Heading(int offset, int level, String text) {
    }

    /** The page holding char {@code offset}: the last page starting at or before it. */
    public int pageAt(int offset) {
        int n = pages.isEmpty() ? 1 : pages.getFirst().number();
        for (Page p : pages) {
            if (p.start() <= offset) n = p.number(); else break;
        }
        return n;
    }

    /** The innermost heading above {@code offset}, or "". */
    public String headingAt(int offset) {
        String h = "";
        for (Heading x : headings) {
            if (x.offset() <= offset) h = x.text(); else break;
        }
        return h;
    }
}
