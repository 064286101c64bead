package dev.enclave.runtime.generate;

import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * Guesses from a smaller model with the same vocabulary (a draft model): its greedy continuation of the sequence.
 * Greedy guesses are single tokens, not distributions, so the target's check (sample each position, keep a guess
 * while the sample equals it) is the exact acceptance rule for a deterministic draft: the answer is the one plain
 * decoding gives, greedy or sampled.
 *
 * <p>The draft model keeps its own KV cache of the sequence. Guessing runs the draft model on its guesses; those the
 * target then keeps are already in that cache, the rest are cut off at the next guess.
 */
public final class ModelDrafter implements Drafter {

    private static final dev.enclave.runtime.sampling.GreedySampler GREEDY = new dev.enclave.runtime.sampling.GreedySampler();

    private final TransformerModel draft;
    private final InferenceState state;
    private int[] history = new int[256];
    private int length;
    /** Tokens of {@code history} in the draft's cache: [base, cached) at positions [0, cached - base). */
    private int cached;
    private int base;
    /** Guesses of the last draft that are in the draft's cache after {@code cached} (position order). */
    private int[] fed = new int[0];
    private int fedCount;
    private int fedUsed;

    /**
     * @param draft the draft model; its vocabulary must be the target's
     * @param contextLength positions to keep for the sequence (capped at the draft model's context)
     */
    public ModelDrafter(TransformerModel draft, int contextLength) {
        this.draft = draft;
        this.state = draft.newState(Math.max(1, contextLength));
    }

    /** Refuses a draft model whose vocabulary differs from the target's: its token ids would mean other text. */
    public static void checkVocabulary(Tokenizer target, Tokenizer draft) {
        int n = target.vocabularySize();
        if (draft.vocabularySize() != n) {
            throw new IllegalArgumentException("the draft model's vocabulary has " + draft.vocabularySize() + " tokens, the model's "
                    + n + ": a draft model must have the same vocabulary as the model");
        }
        for (int i = 0; i < n; i++) {
            if (!target.tokenText(i).equals(draft.tokenText(i))) {
                throw new IllegalArgumentException("the draft model's token " + i + " is '" + draft.tokenText(i) + "', the model's '"
                        + target.tokenText(i) + "': a draft model must have the same vocabulary as the model");
            }
        }
    }

    @Override
    public void accept(int token) {
        if (length == history.length) history = Arrays.copyOf(history, length * 2);
        history[length++] = token;
        // a kept guess the draft model has already read needs no second pass
        if (cached == length - 1 && fedUsed < fedCount && fed[fedUsed] == token) {
            fedUsed++;
            cached++;
        }
    }

    @Override
    public int draft(int[] out, int max) {
        if (length == 0 || max <= 0) return 0;
        // drop guesses the sequence did not keep, then read what the draft model has not seen
        if (state.position() > cached - base) state.truncate(cached - base);
        fedCount = fedUsed = 0;
        if (cached == length) return 0; // nothing new since the last guess (cannot happen between steps)
        if (length - base + 1 > state.contextLength()) {
            // the draft model's context is full (a long answer, or a context shift): it starts again from the recent
            // half of the sequence; its guesses are only guesses, the target checks them all
            base = Math.max(0, length - state.contextLength() / 2);
            state.truncate(0);
            cached = base;
            if (length - base + 1 > state.contextLength()) return 0;
        }
        float[] logits = draft.ingest(state, Arrays.copyOfRange(history, cached, length));
        cached = length;
        int n = Math.min(max, state.contextLength() - state.position());
        if (fed.length < n) fed = new int[n];
        for (int i = 0; i < n; i++) {
            int t = GREEDY.sample(logits);
            out[i] = t;
            if (i + 1 < n) {
                logits = draft.forward(state, t);
                fed[fedCount++] = t;
            }
        }
        return n;
    }

    @Override
    public void close() {
        state.release();
    }
}
