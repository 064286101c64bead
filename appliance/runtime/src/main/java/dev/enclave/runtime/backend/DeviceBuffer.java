package dev.enclave.runtime.backend;

/** Activations in one backend's memory. Only the backend that allocated it reads or writes it. */
public interface DeviceBuffer {
    /** Capacity in floats. */
    int floats();
}
