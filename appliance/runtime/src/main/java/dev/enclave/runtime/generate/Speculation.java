package dev.enclave.runtime.generate;

import dev.enclave.runtime.model.TransformerModel;

/**
 * Speculative decoding: up to {@code maxDraft} guessed tokens are checked by the target model in one batched step.
 * The guesses come from {@link NgramDrafter} (n-grams of {@code minNgram}..{@code maxNgram} tokens found earlier in the
 * sequence: prompt lookup) or, with a {@code draftModel}, from that smaller model's greedy continuation
 * ({@link ModelDrafter}). The output is the one plain decoding gives: each position is still sampled from the
 * target's own distribution, in order, with the same sampler (a guess is kept only when the sample equals it), so
 * greedy text is identical and a seeded sampler draws the same random numbers. How many guesses are checked follows
 * {@link DraftPolicy}, from step costs measured as it runs ({@code fixedCosts}: from a fixed cost model instead, so
 * that tests of the checking path check guesses on any machine).
 */
public record Speculation(int maxDraft, int minNgram, int maxNgram, TransformerModel draftModel, boolean fixedCosts) {

    public static final Speculation OFF = new Speculation(0, 1, 1);
    /** n-grams of 3 to 5 tokens: a 2-token match in free text is chance more often than not. */
    public static final Speculation NGRAM = new Speculation(8, 3, 5);

    public Speculation {
        if (maxDraft < 0 || maxDraft > 32) throw new IllegalArgumentException("draft length must be 0..32, not " + maxDraft);
        if (minNgram < 1 || maxNgram < minNgram) throw new IllegalArgumentException("n-gram sizes " + minNgram + ".." + maxNgram);
    }

    /** Prompt lookup, no draft model. */
    public Speculation(int maxDraft, int minNgram, int maxNgram) {
        this(maxDraft, minNgram, maxNgram, null, false);
    }

    /** The same speculation, its guess lengths chosen from the fixed cost model, not from measured steps. */
    public Speculation withFixedCosts() {
        return new Speculation(maxDraft, minNgram, maxNgram, draftModel, true);
    }

    /** A policy for one sequence; {@code measured} is where the steps' costs are recorded. */
    public DraftPolicy newPolicy(StepCosts measured) {
        return fixedCosts ? new DraftPolicy(maxDraft) : new DraftPolicy(maxDraft, measured);
    }

    /** Guesses from {@code draftModel} (its vocabulary the target's), up to {@code maxDraft} per step. */
    public static Speculation withDraftModel(int maxDraft, TransformerModel draftModel) {
        return new Speculation(maxDraft, NGRAM.minNgram, NGRAM.maxNgram, java.util.Objects.requireNonNull(draftModel), false);
    }

    /** A drafter for one sequence of at most {@code contextLength} positions. */
    public Drafter newDrafter(int contextLength) {
        return draftModel != null ? new ModelDrafter(draftModel, contextLength) : new NgramDrafter(minNgram, maxNgram);
    }

    public boolean enabled() {
        return maxDraft > 0;
    }

    /** What speculation did in one generation. */
    public record Stats(int steps, int drafted, int accepted) {
        public static final Stats NONE = new Stats(0, 0, 0);

        /** Share of drafted tokens the target kept. */
        public double acceptance() {
            return drafted == 0 ? 0 : (double) accepted / drafted;
        }
    }
}
