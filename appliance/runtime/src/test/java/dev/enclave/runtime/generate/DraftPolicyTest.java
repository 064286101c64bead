package dev.enclave.runtime.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Guess lengths follow what is kept; guessing that keeps nothing pauses, longer each time, and costs little. */
class DraftPolicyTest {

    @Test
    void lengthFollowsTheKeptShare() {
        DraftPolicy p = new DraftPolicy(8);
        assertEquals(4, p.length(32), "half the maximum to start");
        for (int i = 0; i < 6; i++) p.checked(8, 8);
        assertEquals(8, p.length(32), "all kept: the longest guesses");
        assertEquals(3, p.length(3), "never past the limit given");
        p.checked(8, 2);
        assertTrue(p.length(32) < 8, "fewer kept: shorter guesses");
    }

    @Test
    void guessesThatAreNeverKeptPauseLongerEachTime() {
        DraftPolicy p = new DraftPolicy(8);
        int checks = 0;
        for (int token = 0; token < 2000; token++) {
            int k = p.length(8);
            if (k > 0) {
                p.checked(k, 0);
                checks++;
            }
        }
        // 16, 32, 64, 128, 256, 256, ... tokens between short runs of checks
        assertTrue(checks < 40, checks + " checks in 2000 tokens");
        DraftPolicy q = new DraftPolicy(8);
        q.checked(4, 0);
        q.checked(4, 0); // 0.5 -> 0.3 -> 0.18: below a quarter
        int paused = 0;
        while (q.length(8) == 0) paused++;
        assertEquals(16, paused);
    }
}
