package dev.enclave.runtime.sampling;

/** Picks the next token from a logits vector. Implementations may modify {@code logits} in place. */
public interface Sampler {

    int sample(float[] logits);

    /** Greedy when {@code temperature <= 0}, else temperature with top-p (nucleus) on a seeded generator. */
    static Sampler of(float temperature, float topP, long seed) {
        if (temperature <= 0f) {
            return new GreedySampler();
        }
        return new TopPSampler(temperature, topP, seed);
    }
}
