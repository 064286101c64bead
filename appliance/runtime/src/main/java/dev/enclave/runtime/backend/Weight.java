package dev.enclave.runtime.backend;

import dev.enclave.runtime.gguf.GGMLType;

/**
 * A tensor as a backend prepared it at load (repacked, uploaded): only that backend's operations read it. The CPU's
 * weights are the {@link dev.enclave.runtime.tensor.FloatTensor}s themselves.
 */
public interface Weight {
    /** The ggml type it was stored as in the model file. */
    GGMLType type();
}
