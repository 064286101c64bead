package dev.enclave.runtime.generate;

/** The outcome of one generation: the new tokens, their text, why it ended, timings, and what speculation did. */
public record GenerationResult(int[] tokens, String text, FinishReason finishReason, int promptTokens,
                               long promptNanos, long generationNanos, Speculation.Stats speculation) {

    public GenerationResult(int[] tokens, String text, FinishReason finishReason, int promptTokens, long promptNanos,
                            long generationNanos) {
        this(tokens, text, finishReason, promptTokens, promptNanos, generationNanos, Speculation.Stats.NONE);
    }

    public int completionTokens() {
        return tokens.length;
    }

    /** Decode speed in tokens per second (0 when nothing was generated). */
    public double tokensPerSecond() {
        return generationNanos > 0 ? tokens.length * 1e9 / generationNanos : 0;
    }
}
