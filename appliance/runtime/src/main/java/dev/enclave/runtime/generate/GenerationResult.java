package dev.enclave.runtime.generate;

/** The outcome of one generation: the new tokens, their text, why it ended, and timings. */
public record GenerationResult(int[] tokens, String text, FinishReason finishReason, int promptTokens,
                               long promptNanos, long generationNanos) {

    public int completionTokens() {
        return tokens.length;
    }

    /** Decode speed in tokens per second (0 when nothing was generated). */
    public double tokensPerSecond() {
        return generationNanos > 0 ? tokens.length * 1e9 / generationNanos : 0;
    }
}
