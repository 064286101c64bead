package dev.enclave.server.model;

import dev.enclave.runtime.chat.ChatTemplate;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.serve.GenerationHandle;
import dev.enclave.runtime.serve.InferenceEngine;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.server.inference.AnswerTokens;
import java.util.List;
import java.util.Optional;

/**
 * One loaded model as a whole: weights, tokenizer, chat template, the engine that runs it and recent answers. A request takes one
 * snapshot and uses only it, so a model switch mid-request cannot send one model's token ids to another.
 */
public record ServedModel(TransformerModel model, InferenceEngine engine, Optional<ChatTemplate> chatTemplate,
                          long createdEpochSeconds, AnswerTokens answers) {

    public String id() {
        return model.name();
    }

    public Tokenizer tokenizer() {
        return model.tokenizer();
    }

    public int contextLength() {
        return model.config().contextLength();
    }

    /** Queues a generation; throws QueueFullException when too many wait. Listener calls come from the scheduler thread. */
    public GenerationHandle submit(GenerationRequest request, TokenListener listener) {
        return engine.submit(request, listener);
    }

    /** n choices of one prompt: read once, forked with copy-on-write KV blocks. */
    public List<? extends GenerationHandle> submitAll(List<GenerationRequest> requests, List<TokenListener> listeners) {
        return engine.submitAll(requests, listeners);
    }
}
