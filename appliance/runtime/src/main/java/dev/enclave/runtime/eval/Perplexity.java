package dev.enclave.runtime.eval;

import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.ModelConfig;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.tokenizer.Tokenizer;

/**
 * Perplexity of a model on a text, chunked exactly as llama.cpp's {@code llama-perplexity}, so that the same file,
 * text and context give comparable numbers: the text is tokenized once (BOS as the vocabulary asks), cut into
 * {@code ctx}-token chunks (the remainder dropped); each chunk runs from an empty cache with its first token replaced by
 * BOS (when the vocabulary adds one), and only its second half is scored: the logits at positions
 * {@code ctx/2 .. ctx-2} against the next token. PPL = exp(mean negative log-likelihood); its error is
 * PPL x the standard error of that mean, as llama.cpp prints it.
 */
public final class Perplexity {

    /** What one run measured. {@code tokens}: positions scored; {@code textTokens}: the whole text's. */
    public record Result(double ppl, double pplStderr, int tokens, int textTokens, int chunks, int ctx, double nllMean) {
    }

    /** Called after each chunk with the running estimate (llama.cpp prints the same "[i]ppl" line). */
    @FunctionalInterface
    public interface Progress {
        void chunk(int index, int chunks, double pplSoFar);
    }

    /** Sees every scored position: its logits ({@code logits[off .. off + vocab)}) and the token that follows. */
    @FunctionalInterface
    public interface Scored {
        void position(float[] logits, int off, int vocab, int target);
    }

    private Perplexity() {
    }

    /** As {@link #run(TransformerModel, String, int, int, int, Progress, Scored)} without a per-position listener. */
    public static Result run(TransformerModel model, String text, int ctx, int batch, int maxChunks, Progress progress) {
        return run(model, text, ctx, batch, maxChunks, progress, null);
    }

    /**
     * @param batch tokens per forward step within a chunk (llama.cpp's {@code -b}); the result does not depend on it
     *     beyond float rounding
     * @param maxChunks at most this many chunks (0: all)
     * @throws IllegalArgumentException when the text has fewer than {@code 2 * ctx} tokens (llama.cpp's rule), or
     *     {@code ctx} does not fit the model
     */
    public static Result run(TransformerModel model, String text, int ctx, int batch, int maxChunks, Progress progress, Scored scored) {
        return run(model, model.options().kvType(), text, ctx, batch, maxChunks, progress, scored);
    }

    /** As above, with the KV cache stored as {@code plan} says. */
    public static Result run(TransformerModel model, dev.enclave.runtime.backend.KvPlan plan, String text, int ctx, int batch,
                             int maxChunks, Progress progress, Scored scored) {
        ModelConfig c = model.config();
        if (ctx < 4) throw new IllegalArgumentException("context " + ctx + " is too small (at least 4)");
        if (ctx > c.contextLength()) throw new IllegalArgumentException("context " + ctx + " exceeds the model's " + c.contextLength());
        if (batch < 1) throw new IllegalArgumentException("batch " + batch + " must be at least 1");
        Tokenizer tok = model.tokenizer();
        int[] tokens = tok.encode(text, true, false);
        if (tokens.length < 2 * ctx) {
            throw new IllegalArgumentException("the text has " + tokens.length + " tokens: at least 2 x " + ctx + " (the context) are needed");
        }
        int[] probe = tok.encode("", true, false);
        boolean addBos = probe.length > 0 && probe[0] == tok.bos() && tok.bos() >= 0;
        int chunks = tokens.length / ctx;
        if (maxChunks > 0) chunks = Math.min(chunks, maxChunks);
        int vocab = c.vocabularySize();
        int first = ctx / 2;
        float[] logits = new float[ctx * vocab];
        int[] chunk = new int[ctx];
        int step = Math.min(batch, ctx);
        double nll = 0, nll2 = 0;
        int count = 0;
        InferenceState s = model.newState(ctx, plan);
        for (int i = 0; i < chunks; i++) {
            System.arraycopy(tokens, i * ctx, chunk, 0, ctx);
            if (addBos) chunk[0] = tok.bos();
            s.truncate(0);
            for (int j = 0; j < ctx; j += step) {
                int n = Math.min(step, ctx - j);
                int[] part = java.util.Arrays.copyOfRange(chunk, j, j + n);
                float[] out = j == 0 && n == ctx ? logits : new float[n * vocab];
                model.ingestAllLogits(s, part, out);
                if (out != logits) System.arraycopy(out, 0, logits, j * vocab, n * vocab);
            }
            for (int p = first; p < ctx - 1; p++) {
                int next = tokens[i * ctx + p + 1];
                if (scored != null) scored.position(logits, p * vocab, vocab, next);
                double v = -logSoftmax(logits, p * vocab, vocab, next);
                nll += v;
                nll2 += v * v;
                count++;
            }
            if (progress != null) progress.chunk(i + 1, chunks, Math.exp(nll / count));
        }
        double mean = nll / count;
        return new Result(Math.exp(mean), stderr(nll, nll2, count), count, tokens.length, chunks, ctx, mean);
    }

    /** What a streamed run measured: {@code tokens} scored, after the first {@code ctx}; {@code shifts} made. */
    public record Streamed(double ppl, double pplStderr, int tokens, int textTokens, int ctx, int shifts, double nllMean) {
    }

    /**
     * Perplexity of one sequence that reads the whole text (or its first {@code maxTokens}) through a context of
     * {@code ctx} positions, shifting it as {@code shift} says whenever it fills: how a context shift or an eviction
     * policy serves a long text (StreamingLLM's evaluation). Each token is read after the previous one, and the tokens
     * after the first {@code ctx} are scored, so every scored token is read from a cache that has been shifted.
     *
     * @throws IllegalArgumentException when the text has no more than {@code ctx} tokens, or a shift frees nothing
     */
    public static Streamed stream(TransformerModel model, dev.enclave.runtime.backend.KvPlan plan, String text, int ctx, int maxTokens,
                                  dev.enclave.runtime.generate.ContextShift shift, Progress progress) {
        ModelConfig c = model.config();
        if (ctx < 8) throw new IllegalArgumentException("context " + ctx + " is too small for a shift (at least 8)");
        if (ctx > c.contextLength()) throw new IllegalArgumentException("context " + ctx + " exceeds the model's " + c.contextLength());
        int[] tokens = model.tokenizer().encode(text, true, false);
        int n = maxTokens > 0 ? Math.min(tokens.length, maxTokens) : tokens.length;
        if (n <= ctx + 1) throw new IllegalArgumentException("the text has " + n + " tokens: more than the context (" + ctx + ") are needed");
        InferenceState s = model.newState(ctx, plan);
        shift.prepare(model, s.blockTable().pool());
        int vocab = c.vocabularySize();
        double nll = 0, nll2 = 0;
        int count = 0, shifts = 0;
        for (int i = 0; i + 1 < n; i++) {
            if (s.position() >= s.contextLength()) {
                if (!shift.apply(model, s)) throw new IllegalArgumentException("a context shift freed nothing at token " + i);
                shifts++;
            }
            float[] logits = model.forward(s, tokens[i]);
            if (i + 1 < ctx) continue;
            double v = -logSoftmax(logits, 0, vocab, tokens[i + 1]);
            nll += v;
            nll2 += v * v;
            count++;
            if (progress != null && count % 1024 == 0) progress.chunk(count, n - ctx, Math.exp(nll / count));
        }
        double mean = nll / count;
        return new Streamed(Math.exp(mean), stderr(nll, nll2, count), count, tokens.length, ctx, shifts, mean);
    }

    /** PPL x the standard error of the mean NLL (as llama.cpp prints it), from the sums of NLL and NLL². */
    private static double stderr(double nll, double nll2, int count) {
        double mean = nll / count, var = nll2 / count - mean * mean;
        return var > 0 && count > 1 ? Math.sqrt(var / (count - 1)) * Math.exp(mean) : 0;
    }

    /** log softmax(row)[index], in double. */
    public static double logSoftmax(float[] logits, int off, int n, int index) {
        return logits[off + index] - logSumExp(logits, off, n);
    }

    /** log(sum(exp(row))), in double, shifted by the row's maximum. */
    static double logSumExp(float[] logits, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
        return max + Math.log(sum);
    }
}
