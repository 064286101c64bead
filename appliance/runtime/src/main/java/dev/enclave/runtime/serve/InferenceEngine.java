package dev.enclave.runtime.serve;

import dev.enclave.runtime.backend.Placement;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.TokenListener;
import java.util.List;

/**
 * What the server talks to: it submits generations, streams their text through a listener, cancels them and reads
 * metrics. The default engine is {@link ContinuousBatchScheduler} over the runtime's forward pass; a whole-model
 * executor that samples on its own (a Qualcomm Genie dialog streams text, not logits) implements this instead and
 * takes the scheduler's place for its model.
 */
public interface InferenceEngine extends AutoCloseable {

    /**
     * Queues a generation; listener calls come from the engine's thread.
     *
     * @throws QueueFullException when too many requests wait
     */
    GenerationHandle submit(GenerationRequest request, TokenListener listener);

    /** Several generations of one prompt (n choices): an engine may read the prompt once for all of them. */
    List<? extends GenerationHandle> submitAll(List<GenerationRequest> requests, List<TokenListener> listeners);

    EngineMetrics metrics();

    /** Where the model runs. */
    Placement placement();

    /** Stops the engine; waiting requests are cancelled. */
    @Override
    void close();
}
