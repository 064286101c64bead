package dev.enclave.runtime.generate;

/**
 * Guesses a sequence's next tokens for the target model to check in one step. It is told every token the sequence
 * keeps (prompt and answer, in order) and asked for up to {@code max} guesses after the last one.
 */
public interface Drafter extends AutoCloseable {

    /** Appends a token of the sequence (prompt or generated). */
    void accept(int token);

    /** Writes up to {@code max} guessed next tokens to {@code out}; returns how many (0: no guess). */
    int draft(int[] out, int max);

    /** Releases what the drafter holds (a draft model's KV cache). */
    @Override
    default void close() {
    }
}
