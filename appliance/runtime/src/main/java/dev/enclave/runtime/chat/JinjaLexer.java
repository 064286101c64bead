package dev.enclave.runtime.chat;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a Jinja template into text, {@code {{ }}} output and {@code {% %}} statement segments, applying
 * whitespace control ({@code -} markers) and the {@code trim_blocks} / {@code lstrip_blocks} settings that
 * Hugging Face uses for chat templates. Comments are dropped.
 */
final class JinjaLexer {

    enum Kind { TEXT, OUTPUT, STATEMENT }

    record Segment(Kind kind, String body, int line) {
    }

    private JinjaLexer() {
    }

    static List<Segment> lex(String src) {
        List<Segment> out = new ArrayList<>();
        int i = 0;
        boolean trimNextLeading = false;   // a "-%}" / "-}}" asked to strip the whitespace that follows
        boolean trimBlockNewline = false;  // trim_blocks: drop one newline right after a block tag
        StringBuilder text = new StringBuilder();
        while (i < src.length()) {
            int open = findOpen(src, i);
            String chunk = open < 0 ? src.substring(i) : src.substring(i, open);
            if (trimNextLeading) {
                chunk = stripLeading(chunk);
            } else if (trimBlockNewline && chunk.startsWith("\n")) {
                chunk = chunk.substring(1);
            } else if (trimBlockNewline && chunk.startsWith("\r\n")) {
                chunk = chunk.substring(2);
            }
            trimNextLeading = false;
            trimBlockNewline = false;
            if (open < 0) {
                text.append(chunk);
                break;
            }
            char type = src.charAt(open + 1);
            boolean minusLeft = open + 2 < src.length() && src.charAt(open + 2) == '-';
            boolean plusLeft = open + 2 < src.length() && src.charAt(open + 2) == '+';
            if (minusLeft) {
                chunk = stripTrailing(chunk);
            } else if ((type == '%' || type == '#') && !plusLeft) {
                // lstrip_blocks: spaces and tabs from the start of the source line up to a block tag go
                int k = 0;
                while (open - k - 1 >= 0 && (src.charAt(open - k - 1) == ' ' || src.charAt(open - k - 1) == '\t')) k++;
                if (open - k == 0 || src.charAt(open - k - 1) == '\n') {
                    int strip = 0;
                    while (strip < k && strip < chunk.length()
                            && (chunk.charAt(chunk.length() - 1 - strip) == ' ' || chunk.charAt(chunk.length() - 1 - strip) == '\t')) {
                        strip++;
                    }
                    chunk = chunk.substring(0, chunk.length() - strip);
                }
            }
            text.append(chunk);
            String close = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
            int bodyStart = open + 2 + (minusLeft || plusLeft ? 1 : 0);
            int end = findClose(src, bodyStart, close);
            if (end < 0) {
                throw new TemplateException("unclosed '" + src.substring(open, open + 2) + "' at line " + line(src, open));
            }
            boolean minusRight = end > bodyStart && src.charAt(end - 1) == '-';
            String body = src.substring(bodyStart, minusRight ? end - 1 : end).strip();
            if (!text.isEmpty()) {
                out.add(new Segment(Kind.TEXT, text.toString(), line(src, open)));
                text.setLength(0);
            }
            if (type == '{') {
                out.add(new Segment(Kind.OUTPUT, body, line(src, open)));
            } else if (type == '%') {
                out.add(new Segment(Kind.STATEMENT, body, line(src, open)));
            }
            trimNextLeading = minusRight;
            trimBlockNewline = !minusRight && type != '{';
            i = end + close.length();
        }
        if (!text.isEmpty()) out.add(new Segment(Kind.TEXT, text.toString(), line(src, src.length())));
        return out;
    }

    private static int findOpen(String s, int from) {
        for (int i = from; i + 1 < s.length(); i++) {
            if (s.charAt(i) == '{') {
                char c = s.charAt(i + 1);
                if (c == '{' || c == '%' || c == '#') return i;
            }
        }
        return -1;
    }

    /** Finds the closing delimiter, skipping over string literals inside the tag. */
    private static int findClose(String s, int from, String close) {
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if ((c == '\'' || c == '"') && !close.equals("#}")) {
                quote = c;
            } else if (s.startsWith(close, i)) {
                return i;
            }
        }
        return -1;
    }

    private static String stripLeading(String s) {
        int i = 0;
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        return s.substring(i);
    }

    private static String stripTrailing(String s) {
        int i = s.length();
        while (i > 0 && Character.isWhitespace(s.charAt(i - 1))) i--;
        return s.substring(0, i);
    }

    static int line(String s, int pos) {
        int n = 1;
        for (int i = 0; i < pos && i < s.length(); i++) if (s.charAt(i) == '\n') n++;
        return n;
    }
}
