package dev.enclave.runtime.sampling;

import java.util.Map;

/**
 * How to pick tokens. Applied in llama.cpp's order: logit bias, repetition/frequency/presence penalties over the
 * last {@code penaltyLastN} tokens, then (unless greedy) top-k, typical-p, top-p and min-p on the untempered
 * distribution, then temperature, then a draw from a generator seeded with {@code seed}.
 *
 * @param temperature      0 (or less) is greedy
 * @param topK             0 disables
 * @param topP             1 disables
 * @param minP             0 disables
 * @param typicalP         1 disables
 * @param repeatPenalty    1 disables; divides positive logits, multiplies negative ones
 * @param penaltyLastN     how many recent tokens the penalties look at (prompt included); -1 means all
 * @param frequencyPenalty subtracted once per occurrence (OpenAI semantics)
 * @param presencePenalty  subtracted once if the token occurred at all
 * @param logitBias        added to the logits of the given ids (-100 bans, +100 forces)
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float typicalP, float repeatPenalty,
                             int penaltyLastN, float frequencyPenalty, float presencePenalty,
                             Map<Integer, Float> logitBias, long seed) {

    public static final SamplingParams GREEDY = new SamplingParams(0f, 0, 1f, 0f, 1f, 1f, 64, 0f, 0f, Map.of(), 0);

    public SamplingParams {
        if (Float.isNaN(temperature)) throw new IllegalArgumentException("temperature is NaN");
        if (topK < 0) throw new IllegalArgumentException("top_k must not be negative");
        if (!(topP > 0f && topP <= 1f)) throw new IllegalArgumentException("top_p must be in (0, 1]");
        if (!(minP >= 0f && minP <= 1f)) throw new IllegalArgumentException("min_p must be in [0, 1]");
        if (!(typicalP > 0f && typicalP <= 1f)) throw new IllegalArgumentException("typical_p must be in (0, 1]");
        if (!(repeatPenalty > 0f)) throw new IllegalArgumentException("repeat_penalty must be positive");
        if (penaltyLastN < -1) throw new IllegalArgumentException("penalty window must be -1 or more");
        if (!Float.isFinite(frequencyPenalty) || !Float.isFinite(presencePenalty)) {
            throw new IllegalArgumentException("penalties must be finite");
        }
        logitBias = logitBias == null ? Map.of() : Map.copyOf(logitBias);
    }

    public static SamplingParams of(float temperature, float topP, long seed) {
        return new SamplingParams(temperature, 0, topP, 0f, 1f, 1f, 64, 0f, 0f, Map.of(), seed);
    }

    /** The same parameters with another seed (choice i of n gets seed + i). */
    public SamplingParams withSeed(long newSeed) {
        return new SamplingParams(temperature, topK, topP, minP, typicalP, repeatPenalty, penaltyLastN, frequencyPenalty, presencePenalty, logitBias, newSeed);
    }

    public SamplingParams withTemperature(float t) {
        return new SamplingParams(t, topK, topP, minP, typicalP, repeatPenalty, penaltyLastN, frequencyPenalty, presencePenalty, logitBias, seed);
    }

    public boolean greedy() {
        return temperature <= 0f;
    }

    public boolean hasPenalties() {
        return repeatPenalty != 1f || frequencyPenalty != 0f || presencePenalty != 0f;
    }
}
