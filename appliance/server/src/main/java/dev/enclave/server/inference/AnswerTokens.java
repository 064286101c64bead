package dev.enclave.server.inference;

import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Recent answers' text and the tokens they were generated as, so that a conversation sent back by a chat client
 * reads its earlier answers as those same tokens.
 *
 * <p>Why: the scheduler keeps a finished conversation's KV blocks (prompt and answer) in the prefix cache, but a
 * client sends the answer back as text, and text does not always re-tokenize into the tokens the model produced
 * (BPE has many encodings of one string and the encoder picks one). Then the cache matches only up to the answer's
 * first block and every follow-up turn recomputes the answer. With the generated tokens spliced in, the next
 * turn computes only its new message. The text is the same either way; only its encoding differs, and it is the
 * encoding the model itself chose.
 */
public final class AnswerTokens {

    private static final int CAPACITY = 1024;
    /** Bytes held at most (text as UTF-16, tokens as ints): long answers make room by evicting the oldest. */
    static final long BYTE_BUDGET = 8L << 20;

    /** The model's tokenizer: tokens recorded or asked for with another (after a model switch) are ignored. */
    private final Tokenizer tokenizer;

    private final LinkedHashMap<String, int[]> recent = new LinkedHashMap<>(64, 0.75f, true);
    private long bytes;

    public AnswerTokens(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Remembers a finished answer when its tokens decode to exactly its text (not so when a stop string cut the
     * text short of its tokens); a final end-of-generation token is left out, as the chat template writes its own.
     */
    public void record(GenerationResult r, Tokenizer tok) {
        if (r == null || r.text().isEmpty() || tok != tokenizer) return;
        int[] tokens = r.tokens();
        int n = tokens.length;
        if (n > 0 && tok.isEndOfGeneration(tokens[n - 1])) n--;
        if (n == 0) return;
        int[] kept = Arrays.copyOf(tokens, n);
        if (!tok.decode(kept).equals(r.text())) return;
        long size = size(r.text(), kept);
        if (size > BYTE_BUDGET) return;
        synchronized (recent) {
            int[] old = recent.put(r.text(), kept);
            bytes += size - (old == null ? 0 : size(r.text(), old));
            var it = recent.entrySet().iterator();
            while ((recent.size() > CAPACITY || bytes > BYTE_BUDGET) && it.hasNext()) {
                Map.Entry<String, int[]> eldest = it.next();
                bytes -= size(eldest.getKey(), eldest.getValue());
                it.remove();
            }
        }
    }

    private static long size(String text, int[] tokens) {
        return 2L * text.length() + 4L * tokens.length + 64;
    }

    /** Answers held now (for tests and metrics). */
    int size() {
        synchronized (recent) {
            return recent.size();
        }
    }

    /** The tokens {@code text} was generated as by {@code tok}'s model, or null when it is not a recent answer. */
    public int[] tokensOf(String text, Tokenizer tok) {
        if (tok != tokenizer) return null;
        synchronized (recent) {
            return recent.get(text);
        }
    }
}
