package dev.enclave.runtime.generate;

import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.runtime.tokenizer.Utf8StreamDecoder;
import java.util.Arrays;

/** Runs the prompt, then samples one token at a time, streaming valid UTF-8 text to a listener. */
public final class Generator {

    private final TransformerModel model;

    public Generator(TransformerModel model) {
        this.model = model;
    }

    /** Generates into a fresh state sized for this prompt and its maximum answer. */
    public GenerationResult generate(GenerationRequest request, TokenListener listener) {
        int ctx = model.config().contextLength();
        if (request.promptTokens().length >= ctx) {
            throw new ContextLengthExceededException(request.promptTokens().length, ctx);
        }
        int needed = (int) Math.min(ctx, (long) request.promptTokens().length + request.maxTokens());
        return generate(model.newState(Math.max(needed, 1)), request, listener);
    }

    public GenerationResult generate(InferenceState state, GenerationRequest request, TokenListener listener) {
        Tokenizer tok = model.tokenizer();
        int[] prompt = request.promptTokens();
        if (state.position() + prompt.length > state.contextLength()) {
            throw new ContextLengthExceededException(state.position() + prompt.length, state.contextLength());
        }
        long t0 = System.nanoTime();
        float[] logits = model.ingest(state, prompt);
        long t1 = System.nanoTime();
        for (int t : prompt) {
            request.sampler().accept(t);
        }

        Utf8StreamDecoder utf8 = new Utf8StreamDecoder();
        StopStringMatcher stops = new StopStringMatcher(request.stop());
        StringBuilder text = new StringBuilder();
        int[] out = new int[Math.min(request.maxTokens(), state.contextLength())];
        int n = 0;
        FinishReason reason = FinishReason.LENGTH;
        while (n < request.maxTokens()) {
            int token = request.sampler().sample(logits);
            if (!request.ignoreEos() && tok.isEndOfGeneration(token)) {
                reason = FinishReason.STOP;
                break;
            }
            request.sampler().accept(token);
            if (n == out.length) out = Arrays.copyOf(out, Math.max(4, n * 2));
            out[n++] = token;
            String released = stops.accept(utf8.feed(tok.pieceBytes(token, false)));
            text.append(released);
            if (!listener.onToken(token, released)) {
                reason = FinishReason.CANCELLED;
                break;
            }
            if (stops.stopped()) {
                reason = FinishReason.STOP;
                break;
            }
            if (n == request.maxTokens() || state.position() >= state.contextLength()) {
                break;
            }
            logits = model.forward(state, token);
        }
        if (reason != FinishReason.CANCELLED && !stops.stopped()) {
            String rest = stops.accept(utf8.flush()) + stops.flush();
            if (!rest.isEmpty()) {
                text.append(rest);
                listener.onToken(-1, rest);
            }
        }
        long t2 = System.nanoTime();
        return new GenerationResult(Arrays.copyOf(out, n), text.toString(), reason, prompt.length, t1 - t0, t2 - t1);
    }
}
