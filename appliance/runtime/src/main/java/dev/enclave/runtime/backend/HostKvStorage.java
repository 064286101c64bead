package dev.enclave.runtime.backend;

/** A layer's keys and values as float32 arrays in the heap, position-major. */
public final class HostKvStorage implements KvStorage {

    public final float[] keys;
    public final float[] values;
    private final int kvDim;

    public HostKvStorage(int kvDim, int positions) {
        long floats = (long) kvDim * positions;
        if (floats > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("KV storage of " + positions + " positions is too large for one array");
        this.kvDim = kvDim;
        this.keys = new float[(int) floats];
        this.values = new float[(int) floats];
    }

    public static HostKvStorage of(KvStorage kv) {
        return (HostKvStorage) kv;
    }

    @Override
    public int positions() {
        return keys.length / kvDim;
    }

    @Override
    public int kvDim() {
        return kvDim;
    }

    @Override
    public void copySlots(int from, int to, int count) {
        System.arraycopy(keys, from * kvDim, keys, to * kvDim, count * kvDim);
        System.arraycopy(values, from * kvDim, values, to * kvDim, count * kvDim);
    }

    @Override
    public void readSlot(int slot, float[] key, float[] value) {
        System.arraycopy(keys, slot * kvDim, key, 0, kvDim);
        System.arraycopy(values, slot * kvDim, value, 0, kvDim);
    }

    @Override
    public long bytes() {
        return 2L * keys.length * Float.BYTES;
    }
}
