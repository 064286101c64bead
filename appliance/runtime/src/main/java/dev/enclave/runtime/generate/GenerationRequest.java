package dev.enclave.runtime.generate;

import dev.enclave.runtime.sampling.Sampler;
import java.util.List;

/**
 * What to generate: prompt tokens, at most {@code maxTokens} new tokens, chosen by {@code sampler}; stops at an
 * end-of-generation token (unless {@code ignoreEos}) or at any of {@code stop}.
 */
public record GenerationRequest(int[] promptTokens, int maxTokens, Sampler sampler, List<String> stop, boolean ignoreEos) {

    public GenerationRequest {
        if (promptTokens.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        if (maxTokens < 0) {
            throw new IllegalArgumentException("max tokens must not be negative");
        }
        stop = stop == null ? List.of() : List.copyOf(stop);
    }
}
