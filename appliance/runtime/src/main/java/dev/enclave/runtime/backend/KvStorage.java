package dev.enclave.runtime.backend;

/**
 * One layer's keys and values in a backend's memory: {@link #positions()} slots of {@code kvDim} floats each. Slot
 * {@code b * blockSize + s} holds position s of block b of the paged pool; which blocks a sequence owns is the
 * runtime's business ({@code KvPool}, {@code BlockTable}).
 */
public interface KvStorage {

    int positions();

    int kvDim();

    /** Copies {@code count} slots' keys and values from slot {@code from} to slot {@code to} (copy-on-write). */
    void copySlots(int from, int to, int count);

    /** Reads slot {@code slot}'s key and value back to the host (tests, diagnostics; not on the hot path). */
    void readSlot(int slot, float[] key, float[] value);

    /** Bytes this storage holds. */
    long bytes();

    /**
     * The attention slots [first, first + count) have received since they were written, summed over queries and
     * heads (heavy-hitter eviction), or NaN where this storage does not keep it ({@link Backend#trackAttention}).
     */
    default double attentionReceived(int first, int count) {
        return Double.NaN;
    }
}
