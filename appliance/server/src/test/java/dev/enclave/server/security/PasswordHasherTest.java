package dev.enclave.server.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Argon2id hashes: a password verifies against its own hash only, and the unknown-user dummy costs what a real hash does. */
class PasswordHasherTest {

    @Test
    void aPasswordVerifiesAgainstItsOwnHashOnly() {
        String h = PasswordHasher.hash("correct horse battery staple");
        assertTrue(PasswordHasher.verify("correct horse battery staple", h));
        assertFalse(PasswordHasher.verify("correct horse battery stapl", h));
        assertFalse(PasswordHasher.verify("correct horse battery staple", PasswordHasher.hash("something else")));
    }

    @Test
    void theTimingDummyHasARealHashsCostAndMatchesNothing() {
        String real = PasswordHasher.hash("whatever");
        String[] a = real.split("\\$"), b = PasswordHasher.TIMING_DUMMY.split("\\$");
        assertEquals(a.length, b.length, PasswordHasher.TIMING_DUMMY);
        assertEquals(a[1], b[1], "algorithm");
        assertEquals(a[2], b[2], "version");
        assertEquals(a[3], b[3], "memory, passes and lanes: an unknown user's login costs a known one's");
        assertEquals(a[4].length(), b[4].length(), "salt length");
        assertEquals(a[5].length(), b[5].length(), "hash length");
        for (String guess : new String[] {"", "not a real password, only for timing", "admin", "\u0000"}) {
            assertFalse(PasswordHasher.verify(guess, PasswordHasher.TIMING_DUMMY), guess);
        }
    }
}
