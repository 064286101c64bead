package dev.enclave.runtime.generate;

import dev.enclave.runtime.sampling.Sampler;
import java.util.List;

/**
 * What to generate: prompt tokens, at most {@code maxTokens} new tokens, chosen by {@code sampler}; stops at an
 * end-of-generation token (unless {@code ignoreEos}) or at any of {@code stop}. {@code topLogprobs} >= 0 asks for
 * log-probabilities of each token and that many alternatives; -1 for none.
 */
public record GenerationRequest(int[] promptTokens, int maxTokens, Sampler sampler, List<String> stop, boolean ignoreEos,
                                int topLogprobs) {

    /** Without log-probabilities. */
    public GenerationRequest(int[] promptTokens, int maxTokens, Sampler sampler, List<String> stop, boolean ignoreEos) {
        this(promptTokens, maxTokens, sampler, stop, ignoreEos, -1);
    }

    public GenerationRequest {
        if (promptTokens.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        if (maxTokens < 0) {
            throw new IllegalArgumentException("max tokens must not be negative");
        }
        stop = stop == null ? List.of() : List.copyOf(stop);
        if (topLogprobs > 20) throw new IllegalArgumentException("top_logprobs must be at most 20");
    }
}
