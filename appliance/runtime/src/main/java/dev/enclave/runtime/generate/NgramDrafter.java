package dev.enclave.runtime.generate;

import java.util.Arrays;

/**
 * Draft tokens without a draft model (prompt lookup): the tokens that followed the latest earlier occurrence of the
 * sequence's last n tokens, n from {@code maxNgram} down to {@code minNgram}. Grounded answers and edits copy long
 * runs from their prompt, so these guesses are often right; the target model checks them all in one step.
 */
public final class NgramDrafter implements Drafter {

    private final int minNgram;
    private final int maxNgram;
    private int[] history = new int[256];
    private int length;

    public NgramDrafter(int minNgram, int maxNgram) {
        if (minNgram < 1 || maxNgram < minNgram) throw new IllegalArgumentException("n-gram sizes " + minNgram + ".." + maxNgram);
        this.minNgram = minNgram;
        this.maxNgram = maxNgram;
    }

    @Override
    public void accept(int token) {
        if (length == history.length) history = Arrays.copyOf(history, length * 2);
        history[length++] = token;
    }

    public int length() {
        return length;
    }

    /** Guesses from the latest earlier occurrence of the last n tokens; 0 when there is none. */
    @Override
    public int draft(int[] out, int max) {
        for (int n = Math.min(maxNgram, length - 1); n >= minNgram; n--) {
            int suffix = length - n;
            for (int i = suffix - 1; i >= 0; i--) {
                if (matches(i, suffix, n)) {
                    int count = Math.min(max, length - (i + n));
                    System.arraycopy(history, i + n, out, 0, count);
                    return count;
                }
            }
        }
        return 0;
    }

    private boolean matches(int at, int suffix, int n) {
        for (int j = 0; j < n; j++) {
            if (history[at + j] != history[suffix + j]) return false;
        }
        return true;
    }
}
