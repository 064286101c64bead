package dev.enclave.runtime.constrain;

import dev.enclave.runtime.sampling.Sampler;
import dev.enclave.runtime.tokenizer.Tokenizer;

/**
 * {@code response_format: json_object}: before the wrapped sampler chooses, every token whose bytes would make
 * the output stop being a prefix of a JSON object is masked out; end-of-generation is allowed only once the object
 * is complete, and once it is complete nothing else is. Prompt tokens are not constrained.
 */
public final class JsonObjectSampler implements Sampler {

    private final Sampler inner;
    private final Tokenizer tokenizer;
    private final JsonPrefixMachine state = new JsonPrefixMachine();
    private final JsonPrefixMachine trial = new JsonPrefixMachine();
    private boolean generating;

    public JsonObjectSampler(Sampler inner, Tokenizer tokenizer) {
        this.inner = inner;
        this.tokenizer = tokenizer;
    }

    @Override
    public int sample(float[] logits) {
        generating = true;
        boolean complete = state.complete();
        int end = tokenizer.eos();
        for (int t = 0; t < logits.length; t++) {
            if (tokenizer.isEndOfGeneration(t)) {
                if (!complete) logits[t] = Float.NEGATIVE_INFINITY;
                else end = t;
                continue;
            }
            if (complete) {
                logits[t] = Float.NEGATIVE_INFINITY;
                continue;
            }
            byte[] piece = tokenizer.pieceBytes(t, false);
            if (piece.length == 0) {
                logits[t] = Float.NEGATIVE_INFINITY;
                continue;
            }
            trial.copyFrom(state);
            if (!trial.accept(piece)) logits[t] = Float.NEGATIVE_INFINITY;
        }
        if (complete && end >= 0) return end;
        return inner.sample(logits);
    }

    @Override
    public void accept(int token) {
        inner.accept(token);
        if (generating && !tokenizer.isEndOfGeneration(token)) state.accept(tokenizer.pieceBytes(token, false));
    }
}
