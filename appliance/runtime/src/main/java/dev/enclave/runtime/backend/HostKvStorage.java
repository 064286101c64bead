package dev.enclave.runtime.backend;

/**
 * A layer's keys and values in the heap, position-major, in the formats of a {@link KvType}. With a float32 type the
 * arrays {@link #keys} and {@link #values} are what attention reads; otherwise they are null and
 * {@link #keyRows}/{@link #valueRows} hold the encoded rows (rotated per head when the type says so).
 */
public final class HostKvStorage implements KvStorage {

    public final KvType type;
    public final int headDim;
    public final KvRows keyRows;
    public final KvRows valueRows;
    /** The float32 rows when both tensors are unrotated float32, else null. */
    public final float[] keys;
    public final float[] values;
    /** Set when the keys (values) are stored rotated. */
    public final HadamardRotation keyRotation;
    public final HadamardRotation valueRotation;
    /** The layer's transform code when the type has one: keys stored before RoPE, both as coefficients. */
    public final KvCode.Layer code;
    /** Tokens of each sequence kept at full precision besides (KIVI's recent window, in the sequence's BlockTable); 0: none. */
    public final int window;
    private final int kvDim;
    /** A row being rotated before it is encoded; kvWrite runs on one thread per step. */
    private final float[] scratch;
    /**
     * Per KV head and slot (head g's at g * positions + slot), the attention its queries gave the slot since it was
     * written; null until tracking is asked for. Each (sequence, KV head) adds only its own, on one thread.
     */
    private volatile float[] attention;

    public HostKvStorage(int kvDim, int positions) {
        this(kvDim, kvDim, positions, KvType.F32);
    }

    public HostKvStorage(int kvDim, int headDim, int positions, KvType type) {
        if (kvDim % headDim != 0) throw new IllegalArgumentException("KV width " + kvDim + " is not a whole number of heads of " + headDim);
        type.check(headDim);
        this.type = type;
        this.kvDim = kvDim;
        this.headDim = headDim;
        type.checkHeads(kvDim / headDim);
        this.code = type.code();
        this.window = type.window();
        if (code != null) {
            this.keyRows = KvRows.coded(code.keys, positions, kvDim, headDim);
            this.valueRows = KvRows.coded(code.values, positions, kvDim, headDim);
        } else {
            this.keyRows = type.keyHeads() != null ? KvRows.perHead(type.keyHeads(), positions, kvDim, headDim)
                    : KvRows.of(type.keys(), positions, kvDim, headDim);
            this.valueRows = type.valueHeads() != null ? KvRows.perHead(type.valueHeads(), positions, kvDim, headDim)
                    : KvRows.of(type.values(), positions, kvDim, headDim);
        }
        this.keyRotation = type.rotateKeys() ? new HadamardRotation(headDim) : null;
        this.valueRotation = type.rotateValues() ? new HadamardRotation(headDim) : null;
        boolean plain = keyRows instanceof KvRows.F32 && valueRows instanceof KvRows.F32;
        this.keys = plain ? ((KvRows.F32) keyRows).data : null;
        this.values = plain ? ((KvRows.F32) valueRows).data : null;
        this.scratch = new float[kvDim];
        this.coefficients = new float[headDim];
    }

    /** A head's coefficients while a row is read back (diagnostics, context shift; one thread at a time). */
    private final float[] coefficients;

    public static HostKvStorage of(KvStorage kv) {
        return (HostKvStorage) kv;
    }

    /** Stores one position's key and value rows ({@code kvDim} floats each), rotating and encoding as the type says. */
    public void write(int slot, float[] k, int kOff, float[] v, int vOff) {
        if (code != null) throw new IllegalStateException("a transform-coded cache stores keys before RoPE: write(slot, position, ...)");
        write(slot, 0, k, kOff, v, vOff);
    }

    /**
     * As above, for the token at {@code position}: a transform-coded cache turns the key back from RoPE's angle for it
     * and stores it without its position.
     */
    public void write(int slot, int position, float[] k, int kOff, float[] v, int vOff) {
        if (code != null) {
            System.arraycopy(k, kOff, scratch, 0, kvDim);
            for (int h = 0; h < kvDim; h += headDim) code.rope(scratch, h, -position);
            keyRows.write(slot, scratch, 0);
        } else {
            put(keyRows, keyRotation, slot, k, kOff);
        }
        put(valueRows, valueRotation, slot, v, vOff);
        float[] a = attention;
        if (a != null) for (int g = 0, n = positions(); g < kvDim / headDim; g++) a[g * n + slot] = 0;
    }

    /** Starts adding up the attention each slot receives ({@link #attention()}); idempotent. */
    public synchronized void trackAttention() {
        if (attention == null) attention = new float[kvDim / headDim * positions()];
    }

    /** The attention per KV head and slot (head g's at g * positions() + slot), or null when not tracked. */
    public float[] attention() {
        return attention;
    }

    @Override
    public double attentionReceived(int first, int count) {
        float[] a = attention;
        if (a == null) return Double.NaN;
        double sum = 0;
        for (int g = 0, n = positions(); g < kvDim / headDim; g++) {
            for (int i = first; i < first + count; i++) sum += a[g * n + i];
        }
        return sum;
    }

    private void put(KvRows rows, HadamardRotation rotation, int slot, float[] src, int off) {
        if (rotation == null) {
            rows.write(slot, src, off);
            return;
        }
        System.arraycopy(src, off, scratch, 0, kvDim);
        for (int h = 0; h < kvDim; h += headDim) rotation.rotate(scratch, h);
        rows.write(slot, scratch, 0);
    }

    @Override
    public int positions() {
        return keyRows.positions;
    }

    @Override
    public int kvDim() {
        return kvDim;
    }

    @Override
    public void copySlots(int from, int to, int count) {
        keyRows.copy(from, to, count);
        valueRows.copy(from, to, count);
        float[] a = attention;
        if (a != null) for (int g = 0, n = positions(); g < kvDim / headDim; g++) System.arraycopy(a, g * n + from, a, g * n + to, count);
    }

    @Override
    public void readSlot(int slot, float[] key, float[] value) {
        get(keyRows, keyRotation, slot, key);
        get(valueRows, valueRotation, slot, value);
    }

    private void get(KvRows rows, HadamardRotation rotation, int slot, float[] dst) {
        if (rows instanceof KvRows.Coded c) {
            for (int h = 0; h < kvDim / headDim; h++) {
                c.decode(slot, h * headDim, headDim, coefficients, 0);
                c.code(h).inverse(coefficients, 0, dst, h * headDim);
            }
            return;
        }
        rows.decode(slot, 0, kvDim, dst, 0);
        if (rotation != null) {
            for (int h = 0; h < kvDim; h += headDim) rotation.unrotate(dst, h);
        }
    }

    /**
     * Slot {@code slot}'s key as the model wrote it (decoded, turned back from its rotation); a transform-coded cache's
     * before RoPE ({@link #keysPositionFree}).
     */
    public void readKey(int slot, float[] dst) {
        get(keyRows, keyRotation, slot, dst);
    }

    /** Whether keys are stored without their position (transform-coded): a context shift then has nothing to turn. */
    public boolean keysPositionFree() {
        return code != null;
    }

    /** Replaces slot {@code slot}'s key (encoded and rotated as the type says); its value is left as it is. */
    public void writeKey(int slot, float[] src) {
        if (code != null) throw new IllegalStateException("a transform-coded cache's keys do not move with a context shift");
        put(keyRows, keyRotation, slot, src, 0);
    }

    @Override
    public long bytes() {
        return keyRows.bytes() + valueRows.bytes();
    }
}
