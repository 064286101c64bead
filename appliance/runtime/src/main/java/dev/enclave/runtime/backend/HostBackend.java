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

    /** Decodes each key, turns its rotary pairs by delta's angles (in double, as {@code rope} does), encodes it again. */
    @Override
    public void shiftKeys(KvStorage kv, int[] slots, int count, int kvHeads, int headDim, float[] invFreq, boolean neox, int delta) {
        HostKvStorage s = HostKvStorage.of(kv);
        int half = invFreq.length;
        float[] cos = new float[half], sin = new float[half];
        for (int i = 0; i < half; i++) {
            double theta = delta * (double) invFreq[i];
            cos[i] = (float) Math.cos(theta);
            sin[i] = (float) Math.sin(theta);
        }
        float[] key = new float[s.kvDim()];
        for (int n = 0; n < count; n++) {
            s.readKey(slots[n], key);
            for (int h = 0; h < kvHeads; h++) {
                int o = h * headDim;
                for (int i = 0; i < half; i++) {
                    int i0 = neox ? o + i : o + 2 * i;
                    int i1 = neox ? o + i + half : o + 2 * i + 1;
                    float a = key[i0], b = key[i1];
                    key[i0] = a * cos[i] - b * sin[i];
                    key[i1] = a * sin[i] + b * cos[i];
                }
            }
            s.writeKey(slots[n], key);
        }
    }
}
