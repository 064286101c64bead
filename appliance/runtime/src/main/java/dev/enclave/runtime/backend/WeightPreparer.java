package dev.enclave.runtime.backend;

import dev.enclave.runtime.tensor.FloatTensor;

/**
 * Turns one model's tensors into a backend's weights at load (repacking them, laying them out, copying them to the
 * device) and owns the memory that takes: closed with the model.
 */
public interface WeightPreparer extends AutoCloseable {

    /**
     * The backend's form of tensor {@code name}, read from the model file as {@code source}: a matrix of {@code rows}
     * rows of {@code cols} values, or a vector ({@code rows} 1).
     */
    Weight prepare(String name, FloatTensor source, int rows, int cols);

    /** After the last tensor: returns when the model can run its first token (e.g. its kernels compiled). */
    default void finish() {
    }

    /** Returns when every kernel the model will run is ready, the batch kernels included: benchmarks measure after it. */
    default void awaitWarmup() throws InterruptedException {
    }

    @Override
    void close();
}
