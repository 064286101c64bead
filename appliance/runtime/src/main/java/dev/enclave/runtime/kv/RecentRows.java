package dev.enclave.runtime.kv;

/**
 * One sequence's last {@code window} keys and values of one layer at full precision (KIVI's recent window): a ring
 * indexed by position modulo the window, each entry tagged with its position, so a rewound sequence (speculative
 * decoding) or a position the ring never saw (a shared prefix, a fork) falls back to the cache's own rows.
 */
public final class RecentRows {

    private final int window;
    private final int kvDim;
    private final float[] keys;
    private final float[] values;
    private final int[] position;

    public RecentRows(int window, int kvDim) {
        this.window = window;
        this.kvDim = kvDim;
        this.keys = new float[window * kvDim];
        this.values = new float[window * kvDim];
        this.position = new int[window];
        java.util.Arrays.fill(position, -1);
    }

    /** An independent copy (a fork's). */
    public RecentRows copy() {
        RecentRows c = new RecentRows(window, kvDim);
        System.arraycopy(keys, 0, c.keys, 0, keys.length);
        System.arraycopy(values, 0, c.values, 0, values.length);
        System.arraycopy(position, 0, c.position, 0, position.length);
        return c;
    }

    public int window() {
        return window;
    }

    /** Keeps position {@code pos}'s key and value rows ({@code kvDim} floats each). */
    public void put(int pos, float[] k, int kOff, float[] v, int vOff) {
        int at = pos % window;
        System.arraycopy(k, kOff, keys, at * kvDim, kvDim);
        System.arraycopy(v, vOff, values, at * kvDim, kvDim);
        position[at] = pos;
    }

    /** Whether position {@code pos}'s rows are here. */
    public boolean has(int pos) {
        return pos >= 0 && position[pos % window] == pos;
    }

    /** Where position {@code pos}'s row starts in {@link #keys()} and {@link #values()}. */
    public int offset(int pos) {
        return (pos % window) * kvDim;
    }

    public float[] keys() {
        return keys;
    }

    public float[] values() {
        return values;
    }

    /** Forgets every position (a context shift turns the cached keys: these would be at the old positions). */
    public void clear() {
        java.util.Arrays.fill(position, -1);
    }
}
