package dev.enclave.runtime.sampling;

/** Picks the next token from a logits vector. Implementations may modify {@code logits} in place. */
public interface Sampler {

    int sample(float[] logits);

    /** Tells the sampler a token entered the sequence (prompt or generated), for penalties. */
    default void accept(int token) {
    }

    /** Greedy when {@code temperature <= 0}, else temperature with top-p (nucleus) on a seeded generator. */
    static Sampler of(float temperature, float topP, long seed) {
        return of(SamplingParams.of(temperature, topP, seed));
    }

    static Sampler of(SamplingParams params) {
        return new ChainSampler(params);
    }
}
