package dev.enclave.runtime.generate;

/**
 * How many guessed tokens one sequence checks per step. Checking costs: a step of k + 1 tokens took 1.4x a one-token
 * step at k = 1..2 and 2.6x at k = 8 on the 1B file, so long guesses pay only where most are kept. The length
 * follows the recent share of kept guesses (1 to the maximum); when that share is low, guessing pauses, twice as long
 * after each pause that did not help (16 to 256 tokens), so that free text costs next to nothing.
 */
public final class DraftPolicy {

    private static final double LOW = 0.25;
    private static final int FIRST_PAUSE = 16;
    private static final int LONGEST_PAUSE = 256;

    private final int maxDraft;
    private double recent = 0.5;
    private int pause;
    private int nextPause = FIRST_PAUSE;

    public DraftPolicy(int maxDraft) {
        this.maxDraft = maxDraft;
    }

    /** Guesses to ask for at this token (0: paused), at most {@code limit}. */
    public int length(int limit) {
        if (pause > 0) {
            pause--;
            return 0;
        }
        return Math.max(0, Math.min(limit, Math.max(1, (int) Math.round(recent * maxDraft))));
    }

    /** What a check did: {@code kept} of {@code drafted} guesses were kept. */
    public void checked(int drafted, int kept) {
        double share = (double) kept / drafted;
        recent = 0.6 * recent + 0.4 * share;
        if (share >= 0.5) nextPause = FIRST_PAUSE;
        if (recent < LOW) {
            pause = nextPause;
            nextPause = Math.min(LONGEST_PAUSE, nextPause * 2);
            recent = 0.4;
        }
    }
}
