package dev.enclave.runtime.sampling;

/** Argmax; ties go to the lowest id (as llama.cpp's reference runs do). */
public final class GreedySampler implements Sampler {

    @Override
    public int sample(float[] logits) {
        return ChainSampler.argmax(logits);
    }
}
