package dev.enclave.runtime.generate;

import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.runtime.tokenizer.Utf8StreamDecoder;
import java.util.Arrays;

/**
 * Runs the prompt, then samples one token at a time, streaming valid UTF-8 text to a listener; with a
 * {@link Speculation}, guessed tokens are checked several at a time.
 */
public final class Generator {

    private final TransformerModel model;
    private final Speculation speculation;
    private final ContextShift shift;
    private int shifts;

    public Generator(TransformerModel model) {
        this(model, Speculation.OFF);
    }

    public Generator(TransformerModel model, Speculation speculation) {
        this(model, speculation, null);
    }

    /** @param shift what a sequence that fills its context does (null: it ends there, finish reason length) */
    public Generator(TransformerModel model, Speculation speculation, ContextShift shift) {
        this.model = model;
        this.speculation = speculation;
        this.shift = shift;
    }

    /** Context shifts made by the last {@link #generate} call. */
    public int shifts() {
        return shifts;
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
        shifts = 0;
        if (shift != null) shift.prepare(model, state.blockTable().pool());
        int[] prompt = request.promptTokens();
        if (state.position() + prompt.length > state.contextLength()) {
            throw new ContextLengthExceededException(state.position() + prompt.length, state.contextLength());
        }
        long t0 = System.nanoTime();
        float[] logits = model.ingest(state, prompt);
        long t1 = System.nanoTime();
        Sampler sampler = request.sampler();
        for (int t : prompt) sampler.accept(t);
        Output o = new Output(model.tokenizer(), request, listener, state.contextLength());
        Drafter drafter = null;
        int[] draft = null;
        float[] all = null, row = null;
        int[][] batches = null;
        if (speculation.enabled()) {
            drafter = speculation.newDrafter(state.contextLength());
            for (int t : prompt) drafter.accept(t);
            int vocab = model.config().vocabularySize();
            draft = new int[speculation.maxDraft()];
            all = new float[(speculation.maxDraft() + 1) * vocab];
            row = new float[vocab];
            batches = new int[speculation.maxDraft() + 2][];
        }
        int steps = 0, drafted = 0, accepted = 0;
        StepCosts costs = new StepCosts(speculation.maxDraft() + 1);
        DraftPolicy policy = speculation.newPolicy(costs);
        try {
            int pending = -1; // a token already sampled from the target at a rejected guess
            while (o.n < request.maxTokens()) {
                int token = pending >= 0 ? pending : sampler.sample(logits);
                pending = -1;
                if (!o.emit(token) || o.n == request.maxTokens()) break;
                if (state.position() >= state.contextLength() && !shifted(state)) break;
                int k = 0;
                if (drafter != null) {
                    drafter.accept(token);
                    int want = policy.length(Math.min(request.maxTokens() - o.n, state.contextLength() - state.position() - 1));
                    if (want > 0) {
                        long d0 = System.nanoTime();
                        k = drafter.draft(draft, want);
                        policy.drafted(k, System.nanoTime() - d0);
                    }
                }
                if (k == 0) {
                    long f0 = System.nanoTime();
                    logits = model.forward(state, token);
                    if (drafter != null) costs.record(1, System.nanoTime() - f0);
                    continue;
                }
                // the target reads the token and the k guesses in one step; position i's logits decide guess i
                int base = state.position();
                int[] batch = batches[k + 1] != null ? batches[k + 1] : (batches[k + 1] = new int[k + 1]);
                batch[0] = token;
                System.arraycopy(draft, 0, batch, 1, k);
                long f0 = System.nanoTime();
                model.ingestAllLogits(state, batch, all);
                costs.record(k + 1, System.nanoTime() - f0);
                int vocab = row.length;
                int kept = 0;
                boolean done = false;
                for (int i = 0; i < k; i++) {
                    System.arraycopy(all, i * vocab, row, 0, vocab);
                    int t = sampler.sample(row);
                    if (t != draft[i]) {
                        pending = t;
                        break;
                    }
                    kept++;
                    if (!o.emit(t) || o.n == request.maxTokens()) {
                        done = true;
                        break;
                    }
                    drafter.accept(t);
                }
                steps++;
                drafted += k;
                accepted += kept;
                policy.checked(k, kept);
                state.truncate(base + 1 + kept);
                if (done) break;
                if (pending < 0) { // every guess kept: the next token comes from the last guess's logits
                    System.arraycopy(all, k * vocab, row, 0, vocab);
                    logits = row;
                }
            }
        } finally {
            if (drafter != null) drafter.close();
        }
        o.finish();
        long t2 = System.nanoTime();
        return new GenerationResult(Arrays.copyOf(o.out, o.n), o.text.toString(), o.reason, prompt.length, t1 - t0, t2 - t1,
                new Speculation.Stats(steps, drafted, accepted));
    }

    /** A full context: shifts it when asked to and it can (true), else the answer ends here. */
    private boolean shifted(InferenceState state) {
        if (shift == null || !shift.apply(model, state)) return false;
        shifts++;
        return true;
    }

    /** The answer as it grows: tokens, released text, stop strings, and why it ended. */
    private static final class Output {
        final Tokenizer tok;
        final GenerationRequest request;
        final TokenListener listener;
        final Utf8StreamDecoder utf8 = new Utf8StreamDecoder();
        final StopStringMatcher stops;
        final StringBuilder text = new StringBuilder();
        int[] out;
        int n;
        FinishReason reason = FinishReason.LENGTH;

        Output(Tokenizer tok, GenerationRequest request, TokenListener listener, int contextLength) {
            this.tok = tok;
            this.request = request;
            this.listener = listener;
            this.stops = new StopStringMatcher(request.stop());
            this.out = new int[Math.min(request.maxTokens(), contextLength)];
        }

        /** Takes a sampled token; false when the answer ends here (end of generation, stop string, cancelled). */
        boolean emit(int token) {
            if (!request.ignoreEos() && tok.isEndOfGeneration(token)) {
                reason = FinishReason.STOP;
                return false;
            }
            request.sampler().accept(token);
            if (n == out.length) out = Arrays.copyOf(out, Math.max(4, n * 2));
            out[n++] = token;
            String released = stops.accept(utf8.feed(tok.pieceBytes(token, false)));
            text.append(released);
            if (!listener.onToken(token, released)) {
                reason = FinishReason.CANCELLED;
                return false;
            }
            if (stops.stopped()) {
                reason = FinishReason.STOP;
                return false;
            }
            return true;
        }

        void finish() {
            if (reason != FinishReason.CANCELLED && !stops.stopped()) {
                String rest = stops.accept(utf8.flush()) + stops.flush();
                if (!rest.isEmpty()) {
                    text.append(rest);
                    listener.onToken(-1, rest);
                }
            }
        }
    }
}
