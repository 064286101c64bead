package dev.enclave.runtime.serve;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.model.TransformerModel;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * Makes a whole-model engine for a model it can run itself (a Genie dialog for a model compiled for the Hexagon NPU),
 * found with {@link ServiceLoader}. The server asks each provider before it falls back to the default engine, the
 * {@link ContinuousBatchScheduler} over the runtime's forward pass.
 */
public interface EngineProvider {

    /** Short stable name, as {@code --backend} takes it ("npu"). */
    String name();

    /**
     * An engine for {@code model} (its file, tokenizer and chat template stay the server's), or empty when this
     * provider cannot run it here (no device, no compiled artifact for this model, another backend asked for).
     */
    Optional<InferenceEngine> open(TransformerModel model, RuntimeOptions options);

    /** The first provider that runs {@code model}, or empty. */
    static Optional<InferenceEngine> find(TransformerModel model, RuntimeOptions options) {
        for (EngineProvider p : ServiceLoader.load(EngineProvider.class)) {
            if (!options.backend().equals("auto") && !options.backend().equals(p.name())) continue;
            Optional<InferenceEngine> e = p.open(model, options);
            if (e.isPresent()) return e;
        }
        return Optional.empty();
    }
}
