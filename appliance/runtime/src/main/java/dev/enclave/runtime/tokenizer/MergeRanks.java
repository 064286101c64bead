package dev.enclave.runtime.tokenizer;

import dev.enclave.runtime.ModelFormatException;
import java.util.Arrays;

/**
 * BPE merge ranks keyed by the pair of token ids they join, in two flat arrays (open addressing, linear probing).
 * Keyed by the merge strings in a {@code HashMap<String, Integer>}, Llama 3's 280,147 merges took ~30 MB of heap
 * (strings, entries, boxed ranks) for the life of the model; here they take 6 MB.
 */
final class MergeRanks {

    private static final long EMPTY = -1L; // ids are non-negative, so no pair packs to -1

    private final long[] keys;
    private final int[] ranks;
    private final int mask;
    private int size;

    MergeRanks(int expected) {
        // the smallest power of two with room for expected * 3/2: Llama 3's merges fill 2^19 slots to 53%
        int capacity = Integer.highestOneBit(Math.max(4, expected + expected / 2) - 1) << 1;
        keys = new long[capacity];
        ranks = new int[capacity];
        Arrays.fill(keys, EMPTY);
        mask = capacity - 1;
    }

    /** A table as {@link #keys()} and {@link #ranks()} gave it (from {@link MergeTableCache}). */
    MergeRanks(long[] keys, int[] ranks, int size) {
        if (keys.length != ranks.length || Integer.bitCount(keys.length) != 1 || size < 0 || (long) size * 4 > (long) keys.length * 3) {
            throw new IllegalArgumentException("not a merge table: " + keys.length + " keys, " + ranks.length + " ranks, " + size + " used");
        }
        this.keys = keys;
        this.ranks = ranks;
        this.mask = keys.length - 1;
        this.size = size;
    }

    /**
     * The ranks of a vocabulary's merges ("left right", lowest rank first) resolved to token ids. A merge whose sides
     * are not tokens could never produce a token: such a merge is left out.
     */
    static MergeRanks resolve(String[] merges, TokenIds ids) {
        MergeRanks table = new MergeRanks(merges.length);
        for (int r = 0; r < merges.length; r++) {
            String m = merges[r];
            int sp = m.indexOf(' ', 1);
            if (sp < 0) {
                throw new ModelFormatException("tokenizer.ggml.merges[" + r + "] = '" + m + "' is not two tokens separated by a space");
            }
            int left = ids.get(m, 0, sp);
            int right = left < 0 ? -1 : ids.get(m, sp + 1, m.length());
            if (right >= 0) table.putIfAbsent(left, right, r);
        }
        return table;
    }

    long[] keys() {
        return keys;
    }

    int[] ranks() {
        return ranks;
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private int slot(long key) {
        long h = key * 0x9E3779B97F4A7C15L; // Fibonacci hashing spreads the packed ids over the table
        return (int) (h >>> 32) & mask;
    }

    /** Records {@code rank} for the pair unless it already has one (the first, lowest rank wins, as in llama.cpp). */
    void putIfAbsent(int left, int right, int rank) {
        if ((long) (size + 1) * 4 > (long) keys.length * 3) throw new IllegalStateException("merge table is full");
        long k = key(left, right);
        for (int i = slot(k); ; i = (i + 1) & mask) {
            if (keys[i] == EMPTY) {
                keys[i] = k;
                ranks[i] = rank;
                size++;
                return;
            }
            if (keys[i] == k) return;
        }
    }

    /** The rank of merging {@code left} and {@code right}, or -1 when they do not merge. */
    int rank(int left, int right) {
        long k = key(left, right);
        for (int i = slot(k); ; i = (i + 1) & mask) {
            long found = keys[i];
            if (found == k) return ranks[i];
            if (found == EMPTY) return -1;
        }
    }

    int size() {
        return size;
    }
}
