package dev.enclave.runtime.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopStringMatcherTest {

    @Test
    void findsStopsAcrossPieces() {
        StopStringMatcher m = new StopStringMatcher(List.of("</end>", "\n\n"));
        assertEquals("Hello ", m.accept("Hello </"));
        assertEquals("", m.accept("en"));
        assertFalse(m.stopped());
        assertEquals("", m.accept("d> more"));
        assertTrue(m.stopped());
        assertEquals("", m.flush());
    }

    @Test
    void releasesHeldTextWhenItTurnsOutNotToBeAStop() {
        StopStringMatcher m = new StopStringMatcher(List.of("STOP"));
        assertEquals("a", m.accept("aST"));
        assertEquals("STx", m.accept("x"));
        assertEquals("", m.accept("S"));
        assertEquals("S", m.flush());
    }

    @Test
    void noStopsPassesEverything() {
        StopStringMatcher m = new StopStringMatcher(List.of());
        assertEquals("abc", m.accept("abc"));
        assertFalse(m.stopped());
    }
}
