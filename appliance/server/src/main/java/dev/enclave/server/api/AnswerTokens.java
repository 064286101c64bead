package dev.enclave.server.api;

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

    /** The model's tokenizer: tokens recorded or asked for with another (after a model switch) are ignored. */
    private final Tokenizer tokenizer;

    private final Map<String, int[]> recent = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, int[]> eldest) {
            return size() > CAPACITY;
        }
    };

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
        synchronized (recent) {
            recent.put(r.text(), kept);
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
