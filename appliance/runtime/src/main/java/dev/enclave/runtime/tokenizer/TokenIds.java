package dev.enclave.runtime.tokenizer;

/**
 * A vocabulary's token strings to their ids, looked up by a whole string or by a range of one without cutting it
 * out: one int array over the vocabulary (open addressing, linear probing). A {@code HashMap<String, Integer>} cost
 * an entry and a boxed id per token, and resolving Llama 3's 280,147 merges meant 560,000 substrings: with that,
 * building the tokenizer took ~0.5 s of every model load, interpreted code on the loading thread.
 */
final class TokenIds {

    private final String[] tokens;
    /** id + 1 per slot, 0 for empty. */
    private final int[] slots;
    private final int mask;

    TokenIds(String[] tokens) {
        this.tokens = tokens;
        int capacity = Integer.highestOneBit(Math.max(4, tokens.length * 2) - 1) << 1; // at most half full
        slots = new int[capacity];
        mask = capacity - 1;
        for (int id = 0; id < tokens.length; id++) {
            String t = tokens[id];
            for (int i = spread(t.hashCode()); ; i = (i + 1) & mask) {
                int s = slots[i];
                if (s == 0 || tokens[s - 1].equals(t)) { // a repeated token keeps the last id, as a map's put did
                    slots[i] = id + 1;
                    break;
                }
            }
        }
    }

    private int spread(int h) {
        return (h ^ (h >>> 16)) * 0x9E3779B9 >>> 7 & mask;
    }

    /** The id of {@code s}, or -1. */
    int get(String s) {
        for (int i = spread(s.hashCode()); ; i = (i + 1) & mask) {
            int id = slots[i] - 1;
            if (id < 0) return -1;
            if (tokens[id].equals(s)) return id;
        }
    }

    /** The id of {@code s.substring(from, to)}, or -1, without making the substring. */
    int get(String s, int from, int to) {
        int h = 0; // String.hashCode over the range
        for (int k = from; k < to; k++) h = 31 * h + s.charAt(k);
        int n = to - from;
        for (int i = spread(h); ; i = (i + 1) & mask) {
            int id = slots[i] - 1;
            if (id < 0) return -1;
            String t = tokens[id];
            if (t.length() == n && t.regionMatches(0, s, from, n)) return id;
        }
    }
}
