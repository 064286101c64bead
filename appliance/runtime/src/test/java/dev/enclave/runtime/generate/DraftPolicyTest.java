package dev.enclave.runtime.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Guess lengths follow what is kept and what steps cost; guessing that does not pay pauses, longer each time, and
 * costs little.
 */
class DraftPolicyTest {

    private static final long MS = 1_000_000L;

    /** Costs measured as a memory-bound model has them: each extra token 5% of a step. */
    private static StepCosts memoryBound(int max) {
        StepCosts c = new StepCosts(max);
        for (int n = 1; n <= max; n++) for (int i = 0; i < 3; i++) c.record(n, (long) (50 * MS * (1 + 0.05 * (n - 1))));
        return c;
    }

    @Test
    void lengthFollowsTheKeptShare() {
        DraftPolicy p = new DraftPolicy(8, memoryBound(9));
        assertTrue(p.length(32) >= 1, "guesses from the first token");
        for (int i = 0; i < 6; i++) p.checked(8, 8);
        assertEquals(8, p.length(32), "all kept, checks nearly free: the longest guesses");
        assertEquals(3, p.length(3), "never past the limit given");
        for (int i = 0; i < 40; i++) p.checked(8, 1);
        assertTrue(p.length(32) <= 5, "fewer kept: shorter guesses");
    }

    @Test
    void costlierChecksMeanShorterGuessesOrNone() {
        StepCosts computeBound = new StepCosts(9);
        for (int n = 1; n <= 9; n++) for (int i = 0; i < 3; i++) computeBound.record(n, 50 * MS * n); // k + 1 steps' cost
        DraftPolicy p = new DraftPolicy(8, computeBound);
        for (int i = 0; i < 6; i++) p.checked(4, 3);
        assertEquals(0, p.choose(8, 0), "a check costing k + 1 steps never pays");
        DraftPolicy cheap = new DraftPolicy(8, memoryBound(9));
        for (int i = 0; i < 6; i++) cheap.checked(4, 3);
        assertTrue(cheap.choose(8, 0) >= 3, "the same keep rate on cheap checks: " + cheap.choose(8, 0));
        // a draft model whose guess costs as much as a target step makes guessing lose
        DraftPolicy slowDraft = new DraftPolicy(8, memoryBound(9));
        for (int i = 0; i < 6; i++) slowDraft.checked(4, 3);
        for (int i = 0; i < 3; i++) slowDraft.drafted(4, 4 * 500 * MS); // warming up: not counted
        assertTrue(slowDraft.choose(8, 0) >= 3);
        for (int i = 0; i < 3; i++) slowDraft.drafted(4, 4 * 50 * MS);
        assertEquals(0, slowDraft.choose(8, 0));
        // it pauses, then probes; draft steps that turn out fast (compiled by now) bring the guesses back
        assertEquals(0, slowDraft.length(8));
        for (int i = 0; i < 16; i++) assertEquals(0, slowDraft.length(8));
        assertEquals(1, slowDraft.length(8), "the probe after the pause");
        for (int i = 0; i < 4; i++) {
            slowDraft.drafted(2, 2 * MS / 10);
            slowDraft.checked(2, 2);
        }
        assertTrue(slowDraft.length(8) >= 3, "fast drafts, guesses kept: long guesses again");
    }

    /** Costs as the 1B Q4_0 file has them: a check of 2 tokens 1.38 steps, 3 tokens 1.37, 5 tokens 2.2, 9 tokens 2.6. */
    private static StepCosts q4Costs() {
        StepCosts c = new StepCosts(9);
        double[] steps = {0, 1, 1.38, 1.37, 1.8, 2.2, 2.3, 2.4, 2.5, 2.6};
        for (int n = 1; n <= 9; n++) for (int i = 0; i < 3; i++) c.record(n, (long) (25 * MS * steps[n]));
        return c;
    }

    /** Checks made in 2,000 tokens when each keeps {@code allKept ? all : none} and a guess takes {@code nanos} to draft. */
    private static int checksIn2000Tokens(DraftPolicy p, boolean allKept, long nanos) {
        int checks = 0;
        for (int token = 0; token < 2000; token++) {
            int k = p.length(8);
            if (k > 0) {
                p.drafted(k, k * nanos);
                p.checked(k, allKept ? k : 0);
                checks++;
            }
        }
        return checks;
    }

    @Test
    void guessesThatAreNeverKeptPauseLongerEachTime() {
        int checks = checksIn2000Tokens(new DraftPolicy(8, q4Costs()), false, 0);
        // 16, 32, 64, 128, 256, 256, ... tokens between short runs of checks
        assertTrue(checks < 40, checks + " checks in 2000 tokens");
        DraftPolicy q = new DraftPolicy(8, q4Costs());
        int misses = 0;
        while (q.length(8) > 0) {
            q.checked(2, 0);
            misses++;
        }
        assertEquals(4, misses, "the first four checks are made whatever they keep, then a pause");
        int paused = 1; // the call that answered 0 started it
        while (q.length(8) == 0) paused++;
        assertEquals(17, paused);
    }

    @Test
    void aDraftThatIsRightButTooSlowPausesLongerEachTime() {
        // every guess kept, each taking four target steps to draft
        int checks = checksIn2000Tokens(new DraftPolicy(8, q4Costs()), true, 100 * MS);
        assertTrue(checks < 40, checks + " checks in 2000 tokens");
    }

    @Test
    void sequencesShareWhatTheEngineMeasured() {
        StepCosts shared = q4Costs();
        DraftPolicy first = new DraftPolicy(8, shared);
        first.drafted(4, 2000 * MS); // its first draft reads the prompt: left out
        for (int i = 0; i < 8; i++) first.drafted(4, 4 * 100 * MS); // then guesses at four target steps each
        assertEquals(0.1, shared.draftSeconds(), 1e-9);
        DraftPolicy next = new DraftPolicy(8, shared);
        for (int i = 0; i < 6; i++) next.checked(4, 4);
        assertEquals(0, next.choose(8, 0), "a new sequence knows the draft is too slow");
    }

    @Test
    void stepCostsEstimateUnmeasuredSizes() {
        StepCosts c = new StepCosts(9);
        assertEquals(1.0, c.seconds(1), 1e-12);
        StepCosts onlyLarger = new StepCosts(9);
        onlyLarger.record(4, 1);
        onlyLarger.record(4, 19 * MS);
        assertEquals(0.010, onlyLarger.seconds(1), 1e-9, "from the nearest larger size measured");
        assertEquals(1.3, c.seconds(2), 1e-12);
        c.record(1, 900 * MS); // the first of a size compiles code: left out
        c.record(1, 40 * MS);
        assertEquals(0.040, c.seconds(1), 1e-9);
        assertEquals(0.040 * 1.6, c.seconds(3), 1e-9);
        c.record(3, 1);
        c.record(3, 50 * MS);
        assertEquals(0.050, c.seconds(3), 1e-9);
        assertEquals(0.050 * 2.2 / 1.6, c.seconds(5), 1e-9);
    }
}
