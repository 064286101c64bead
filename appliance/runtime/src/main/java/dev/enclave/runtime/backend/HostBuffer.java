package dev.enclave.runtime.backend;

/** A buffer in the JVM's heap, for the backends that compute there (the CPU's and the reference). */
public final class HostBuffer implements DeviceBuffer {

    public final float[] data;

    public HostBuffer(int floats) {
        this.data = new float[floats];
    }

    @Override
    public int floats() {
        return data.length;
    }

    /** The heap array behind {@code b}, which must be a host buffer. */
    public static float[] of(DeviceBuffer b) {
        return ((HostBuffer) b).data;
    }
}
