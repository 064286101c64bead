package dev.enclave.runtime.generate;

import java.util.List;

/**
 * Finds stop strings in streamed text even when they span token boundaries: text that could still be the start
 * of a stop string is held back until it is known not to be one.
 */
public final class StopStringMatcher {

    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    public StopStringMatcher(List<String> stops) {
        this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
    }

    public boolean stopped() {
        return stopped;
    }

    /** Adds text; returns the part that can be released now (all text before a stop string, once one is seen). */
    public String accept(String text) {
        if (stopped) {
            return "";
        }
        pending.append(text);
        if (stops.isEmpty()) {
            String all = pending.toString();
            pending.setLength(0);
            return all;
        }
        int earliest = -1;
        for (String s : stops) {
            int i = pending.indexOf(s);
            if (i >= 0 && (earliest < 0 || i < earliest)) earliest = i;
        }
        if (earliest >= 0) {
            stopped = true;
            String out = pending.substring(0, earliest);
            pending.setLength(0);
            return out;
        }
        int hold = 0;
        String p = pending.toString();
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, p.length()); k > hold; k--) {
                if (p.regionMatches(p.length() - k, s, 0, k)) {
                    hold = k;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - hold);
        pending.delete(0, pending.length() - hold);
        return out;
    }

    /** Text still held back at the end of generation. */
    public String flush() {
        String out = stopped ? "" : pending.toString();
        pending.setLength(0);
        return out;
    }
}
