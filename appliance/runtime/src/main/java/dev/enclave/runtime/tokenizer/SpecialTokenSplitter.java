package dev.enclave.runtime.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Cuts text at occurrences of special tokens before the tokenizer proper runs, as llama.cpp does: longest special
 * text first; control (and unknown) tokens only when {@code parseSpecial}, user-defined tokens always.
 */
final class SpecialTokenSplitter {

    /** Receives the pieces in order: raw text for the tokenizer, or a special token id. */
    interface Sink {
        void text(String raw);

        void token(int id);
    }

    private record Special(String text, int id, boolean control) {
    }

    private final List<Special> specials;

    SpecialTokenSplitter(String[] tokens, int[] types) {
        List<Special> s = new ArrayList<>();
        for (int i = 0; i < tokens.length; i++) {
            int t = types[i];
            if ((t == TokenType.CONTROL || t == TokenType.USER_DEFINED || t == TokenType.UNKNOWN) && !tokens[i].isEmpty()) {
                s.add(new Special(tokens[i], i, t != TokenType.USER_DEFINED));
            }
        }
        s.sort(Comparator.comparingInt((Special x) -> x.text.length()).reversed());
        this.specials = List.copyOf(s);
    }

    void split(String text, boolean parseSpecial, Sink sink) {
        int start = 0;
        int i = 0;
        while (i < text.length()) {
            Special hit = null;
            for (Special s : specials) {
                if ((parseSpecial || !s.control) && text.startsWith(s.text, i)) {
                    hit = s;
                    break;
                }
            }
            if (hit == null) {
                i++;
                continue;
            }
            if (i > start) sink.text(text.substring(start, i));
            sink.token(hit.id);
            i += hit.text.length();
            start = i;
        }
        if (start < text.length()) sink.text(text.substring(start));
    }

    boolean isEmpty() {
        return specials.isEmpty();
    }

}
