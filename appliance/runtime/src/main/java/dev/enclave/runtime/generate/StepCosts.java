package dev.enclave.runtime.generate;

/**
 * What a forward step of n tokens costs on this machine and model, as measured while generating: what decides
 * whether checking k guessed tokens in one step is worth it (memory-bound weights make a few more tokens nearly
 * free; compute-bound ones make each cost almost a step). Sizes not measured yet are estimated from the nearest
 * one measured (smaller first), at 0.3 of a one-token step per extra token. It also times the drafter's guesses. The
 * engine keeps one per model, shared by its sequences, so a new request starts from what earlier ones measured.
 */
public final class StepCosts {

    private static final double PRIOR_PER_TOKEN = 0.3;
    private static final int WARM_UP_DRAFTS = 3;

    private final double[] seconds;
    private final int[] samples;
    private double draftSeconds;
    private int drafts;

    /** Costs of steps of 1 to {@code maxTokens} tokens. */
    public StepCosts(int maxTokens) {
        seconds = new double[maxTokens + 1];
        samples = new int[maxTokens + 1];
    }

    /** A step of {@code tokens} tokens took {@code nanos}. The first of each size is left out (it compiles code). */
    public void record(int tokens, long nanos) {
        if (tokens < 1 || tokens >= seconds.length || samples[tokens]++ == 0) return;
        seconds[tokens] = estimate(seconds[tokens], nanos / 1e9);
    }

    /**
     * A running estimate that follows faster samples quickly and slower ones slowly: what slows a step besides its
     * work (compilation, a collection, another process) only ever adds time.
     */
    static double estimate(double current, double sample) {
        if (current == 0) return sample;
        return sample < current ? 0.5 * current + 0.5 * sample : 0.9 * current + 0.1 * sample;
    }

    /** Seconds a step of {@code tokens} tokens takes (in one-token steps while nothing is measured). */
    public double seconds(int tokens) {
        int n = Math.min(tokens, seconds.length - 1);
        if (seconds[n] > 0) return seconds[n] * tokens / n;
        for (int m = n - 1; m >= 1; m--) {
            if (seconds[m] > 0) return seconds[m] * prior(tokens) / prior(m);
        }
        for (int m = n + 1; m < seconds.length; m++) {
            if (seconds[m] > 0) return seconds[m] * prior(tokens) / prior(m);
        }
        return prior(tokens);
    }

    /**
     * Drafting {@code guesses} guesses took {@code nanos}. The first calls are left out: a draft model's first steps
     * compile its kernels (ten times slower than later ones while they do); the estimate then follows faster calls
     * quickly.
     */
    public void drafted(int guesses, long nanos) {
        if (guesses <= 0 || drafts++ < WARM_UP_DRAFTS) return;
        draftSeconds = estimate(draftSeconds, nanos / 1e9 / guesses);
    }

    /** Seconds a draft takes per guess (0 until measured: n-gram lookups stay at about that). */
    public double draftSeconds() {
        return draftSeconds;
    }

    /** Whether any step has been measured (so that costs are in seconds, comparable with draft times). */
    public boolean measured() {
        for (double s : seconds) if (s > 0) return true;
        return false;
    }

    private static double prior(int tokens) {
        return 1 + PRIOR_PER_TOKEN * (tokens - 1);
    }
}
