package dev.enclave.runtime.sampling;

/** Argmax; ties go to the lowest id (as llama.cpp's reference runs do). */
public final class GreedySampler implements Sampler {

    @Override
    public int sample(float[] logits) {
        int best = 0;
        float max = logits[0];
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > max) {
                max = logits[i];
                best = i;
            }
        }
        return best;
    }
}
