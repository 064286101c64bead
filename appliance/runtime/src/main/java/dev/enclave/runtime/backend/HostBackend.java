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
}
