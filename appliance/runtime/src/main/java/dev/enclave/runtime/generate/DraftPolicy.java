package dev.enclave.runtime.generate;

/**
 * How many guessed tokens one sequence checks per step. The length follows the share of guesses kept lately (1 to
 * the maximum: kept guesses come in runs — a copied passage, a draft model in step with the target — so a high share
 * asks for long guesses) as long as checking pays: a check of k guesses yields 1 + p + ... + p^k tokens when each is
 * kept with probability p, and costs a step of k + 1 tokens ({@link StepCosts}, measured as it runs: memory-bound
 * weights make a few more tokens nearly free, compute-bound ones make each cost almost a step) plus k draft guesses
 * (a draft model's steps; next to nothing for n-gram lookups). When that length does not beat plain steps the best
 * one that does is taken; when none does, guessing pauses, twice as long after each pause that did not help (16 to
 * 256 tokens), then checks at least one guess: the probe renews the estimates (a draft model's first steps, still
 * compiling, make it look slower than it is).
 */
public final class DraftPolicy {

    private static final int FIRST_PAUSE = 16;
    private static final int LONGEST_PAUSE = 256;
    /** A check must promise this much over plain steps: the estimates are noisy and a check that misses is wasted. */
    private static final double MARGIN = 1.05;
    private static final double DECAY = 0.9;
    private static final int FIRST_CHECKS = 4;

    private final int maxDraft;
    private final StepCosts costs;
    // share of guesses kept per check, averaged over the last few checks: what the length follows
    private double share = 0.5;
    // decayed counts of guesses kept and of rejections: p = kept / (kept + missed) prices a check; starts at three
    // in four (a sequence that finds guesses at all mostly copies, and a slow start costs more than a miss)
    private double kept = 3, missed = 1;
    private int pause;
    private int drafts;
    private int checks;
    private boolean probe;
    private int nextPause = FIRST_PAUSE;

    /** A policy with its own cost measurements (none given to it: the prior cost model alone). */
    public DraftPolicy(int maxDraft) {
        this(maxDraft, new StepCosts(maxDraft + 1));
    }

    public DraftPolicy(int maxDraft, StepCosts costs) {
        this.maxDraft = maxDraft;
        this.costs = costs;
    }

    /** Guesses to ask for at this token (0: none), at most {@code limit}, for a step of this sequence alone. */
    public int length(int limit) {
        return length(limit, 0);
    }

    /** The same for a step that also carries {@code others} plain tokens of other sequences. */
    public int length(int limit, int others) {
        if (pause > 0) {
            pause--;
            return 0;
        }
        int k = choose(Math.min(limit, maxDraft), others);
        if (k > 0 && !probe) nextPause = FIRST_PAUSE; // guessing pays (again), not just at the probe's even odds
        // the first checks and the one that ends a pause are made whatever the estimates say: they are how the
        // estimates learn (one unlucky miss would otherwise stop guessing from the first token)
        if (probe || checks < FIRST_CHECKS) {
            probe = false;
            return Math.max(k, Math.min(1, limit));
        }
        if (k == 0 && limit > 0) {
            pause = nextPause;
            nextPause = Math.min(LONGEST_PAUSE, nextPause * 2);
            probe = true;
            kept = missed = 1; // and from even odds
            share = 0.4;
        }
        return k;
    }

    /** The length the kept share asks for if it pays, else the one with the most tokens per second that pays, else 0. */
    int choose(int limit, int others) {
        if (limit <= 0) return 0;
        double p = keepProbability();
        double perGuess = costs.measured() ? costs.draftSeconds() : 0;
        double plain = MARGIN * (others + 1) / costs.seconds(others + 1);
        int wanted = Math.min(limit, Math.max(1, (int) Math.round(share * maxDraft)));
        int best = 0;
        double bestRate = plain;
        double yield = 1, pk = 1;
        for (int k = 1; k <= limit; k++) {
            pk *= p;
            yield += pk;
            double rate = (others + yield) / (costs.seconds(others + 1 + k) + k * perGuess);
            if (k == wanted && rate > plain) return k;
            if (rate > bestRate) {
                bestRate = rate;
                best = k;
            }
        }
        return best;
    }

    /** What a check did: {@code kept} of {@code drafted} guesses were kept. */
    public void checked(int drafted, int keptNow) {
        checks++;
        share = 0.6 * share + 0.4 * keptNow / drafted;
        kept = DECAY * kept + keptNow;
        missed = DECAY * missed + (keptNow < drafted ? 1 : 0);
    }

    /**
     * Drafting {@code guesses} guesses took {@code nanos} ({@link StepCosts#drafted}). This sequence's first draft is
     * left out: a draft model reads the whole prompt in it, once.
     */
    public void drafted(int guesses, long nanos) {
        if (guesses > 0 && drafts++ > 0) costs.drafted(guesses, nanos);
    }

    double keepProbability() {
        return kept / (kept + missed);
    }
}
