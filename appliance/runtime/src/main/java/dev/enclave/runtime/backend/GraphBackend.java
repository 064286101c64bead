package dev.enclave.runtime.backend;

import java.nio.file.Path;

/**
 * A whole-graph executor: it loads a model compiled for its device (an SNPE DLC, a QNN context binary, a Genie
 * configuration) and runs complete decode steps itself, returning logits.
 */
public non-sealed interface GraphBackend extends Backend {

    /** Whether this backend can run the compiled artifact at {@code path}. */
    boolean canRun(Path path);

    /** Opens a session on a compiled artifact. */
    GraphSession open(Path path);

    /** One loaded graph with its own state (KV cache held by the device). */
    interface GraphSession extends AutoCloseable {
        int vocabularySize();

        /** Runs {@code tokens} at positions starting from {@code startPos}; writes the last position's logits. */
        void decode(int[] tokens, int startPos, float[] logits);

        @Override
        void close();
    }
}
