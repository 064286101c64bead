package dev.enclave.runtime.backend;

/**
 * A backend that computes in the JVM's heap (the CPU's, the reference): its activations are {@link HostBuffer}s, its
 * KV storage {@link HostKvStorage}, and moving data to and from the host is a copy.
 */
public abstract class HostBackend implements Backend {

    @Override
    public DeviceBuffer allocate(int floats) {
        return new HostBuffer(floats);
    }

    @Override
    public KvStorage allocateKv(int kvDim, int headDim, int positions, KvType type) {
        return new HostKvStorage(kvDim, headDim, positions, type);
    }

    @Override
    public void upload(float[] src, int srcOff, DeviceBuffer dst, int dstOff, int n) {
        System.arraycopy(src, srcOff, HostBuffer.of(dst), dstOff, n);
    }

    @Override
    public void download(DeviceBuffer src, int srcOff, float[] dst, int dstOff, int n) {
        System.arraycopy(HostBuffer.of(src), srcOff, dst, dstOff, n);
    }

    @Override
    public boolean canShiftKeys() {
        return true;
    }

    /**
     * Decodes the keys, turns them with this backend's own {@link #rope} at position {@code delta} (RoPE at p turned by
     * delta is RoPE at p + delta), encodes them again.
     */
    @Override
    public void shiftKeys(KvStorage kv, int[] slots, int count, int kvHeads, int headDim, float[] invFreq, boolean neox, int delta) {
        HostKvStorage s = HostKvStorage.of(kv);
        if (s.keysPositionFree()) return; // stored before RoPE: turned to their (new) position when read
        int kvDim = s.kvDim();
        HostBuffer keys = new HostBuffer(count * kvDim);
        StepBatch at = new StepBatch(Math.max(1, count), 1);
        at.tokens = count;
        java.util.Arrays.fill(at.pos, delta);
        float[] row = new float[kvDim];
        for (int n = 0; n < count; n++) {
            s.readKey(slots[n], row);
            System.arraycopy(row, 0, keys.data, n * kvDim, kvDim);
        }
        rope(keys, 0, kvDim, kvHeads, headDim, at, invFreq, neox);
        for (int n = 0; n < count; n++) {
            System.arraycopy(keys.data, n * kvDim, row, 0, kvDim);
            s.writeKey(slots[n], row);
        }
    }
}
