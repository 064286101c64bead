package dev.enclave.runtime.constrain;

import dev.enclave.runtime.sampling.Sampler;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.util.List;

/**
 * {@code response_format: json_schema}: before the wrapped sampler chooses, every token whose bytes would make the
 * output stop being a prefix of a document valid against the schema is masked; end-of-generation is allowed only
 * when the document is complete. Tokens are screened by their first byte before their whole text is tried.
 */
public final class JsonSchemaSampler implements Sampler {

    private final Sampler inner;
    private final Tokenizer tokenizer;
    private List<JsonSchemaMachine.State> states;
    private boolean generating;
    private final byte[][] pieces;

    public JsonSchemaSampler(Sampler inner, Tokenizer tokenizer, JsonSchema schema) {
        this.inner = inner;
        this.tokenizer = tokenizer;
        this.states = List.of(JsonSchemaMachine.start(schema));
        this.pieces = new byte[tokenizer.vocabularySize()][];
        for (int t = 0; t < pieces.length; t++) pieces[t] = tokenizer.isEndOfGeneration(t) ? null : tokenizer.pieceBytes(t, false);
    }

    @Override
    public int sample(float[] logits) {
        generating = true;
        boolean complete = JsonSchemaMachine.anyComplete(states);
        // which first bytes can continue the document at all
        boolean[] first = new boolean[256];
        for (int c = 0; c < 256; c++) first[c] = !JsonSchemaMachine.feed(states, new byte[] {(byte) c}).isEmpty();
        int end = -1;
        boolean any = false;
        for (int t = 0; t < logits.length; t++) {
            byte[] piece = t < pieces.length ? pieces[t] : null;
            if (piece == null) {
                if (tokenizer.isEndOfGeneration(t) && complete) {
                    end = t;
                    any = true;
                } else {
                    logits[t] = Float.NEGATIVE_INFINITY;
                }
                continue;
            }
            if (piece.length == 0 || !first[piece[0] & 0xFF]
                    || (piece.length > 1 && JsonSchemaMachine.feed(states, piece).isEmpty())) {
                logits[t] = Float.NEGATIVE_INFINITY;
            } else {
                any = true;
            }
        }
        if (!any) return tokenizer.eos(); // nothing can continue (should not happen with a satisfiable schema)
        // the document is closed (an object or array ended, or a literal): stop instead of trailing whitespace
        if (end >= 0) {
            for (JsonSchemaMachine.State st : states) if (st instanceof JsonSchemaMachine.End) return end;
        }
        // a complete document that cannot grow ends here
        if (complete && end >= 0 && !hasFinite(logits, end)) return end;
        return inner.sample(logits);
    }

    private static boolean hasFinite(float[] logits, int except) {
        for (int t = 0; t < logits.length; t++) if (t != except && logits[t] != Float.NEGATIVE_INFINITY) return true;
        return false;
    }

    @Override
    public void accept(int token) {
        inner.accept(token);
        if (generating && !tokenizer.isEndOfGeneration(token)) {
            List<JsonSchemaMachine.State> next = JsonSchemaMachine.feed(states, tokenizer.pieceBytes(token, false));
            if (!next.isEmpty()) states = next;
        }
    }

    /** True when the text so far is a complete document. */
    public boolean complete() {
        return JsonSchemaMachine.anyComplete(states);
    }
}
