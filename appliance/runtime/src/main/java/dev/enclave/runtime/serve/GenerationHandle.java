package dev.enclave.runtime.serve;

import dev.enclave.runtime.generate.GenerationResult;
import java.util.concurrent.CompletableFuture;

/** A submitted generation: its result when it ends, and a way to stop it (its KV memory is freed at the next step). */
public interface GenerationHandle {

    void cancel();

    CompletableFuture<GenerationResult> result();
}
