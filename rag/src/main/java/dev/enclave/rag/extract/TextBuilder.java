package dev.enclave.rag.extract;

import java.util.ArrayList;
import java.util.List;

/** Accumulates extracted text with page starts and headings, and enforces the extracted-size cap. */
final class TextBuilder {
    private final StringBuilder text = new StringBuilder();
    private final List<ExtractedDocument.Page> pages = new ArrayList<>();
    private final List<ExtractedDocument.Heading> headings = new ArrayList<>();
    private final long maxChars;
    private int pageNumber;
    private int pageStart;

    TextBuilder(long maxChars) {
        this.maxChars = maxChars;
    }

    void startPage(int number) {
        if (pageNumber > 0) pages.add(new ExtractedDocument.Page(pageNumber, pageStart, text.length()));
        pageNumber = number;
        pageStart = text.length();
    }

    void heading(int level, String h) throws ExtractionException {
        String t = h.strip();
        if (t.isEmpty()) return;
        paragraphBreak();
        headings.add(new ExtractedDocument.Heading(text.length(), level, t));
        append(t);
        paragraphBreak();
    }

    void append(CharSequence s) throws ExtractionException {
        if (text.length() + (long) s.length() > maxChars) {
            throw new ExtractionException("extracted text exceeds " + maxChars + " characters (decompression bomb?)");
        }
        text.append(s);
    }

    void paragraphBreak() throws ExtractionException {
        int n = text.length();
        if (n == 0) return;
        if (n >= 2 && text.charAt(n - 1) == '\n' && text.charAt(n - 2) == '\n') return;
        append(text.charAt(n - 1) == '\n' ? "\n" : "\n\n");
    }

    int length() {
        return text.length();
    }

    ExtractedDocument build(String title, String mediaType) {
        if (pageNumber == 0) startPage(1);
        pages.add(new ExtractedDocument.Page(pageNumber, pageStart, text.length()));
        return new ExtractedDocument(title, mediaType, text.toString(), List.copyOf(pages), List.copyOf(headings));
    }
}
