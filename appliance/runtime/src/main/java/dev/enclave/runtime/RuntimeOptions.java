package dev.enclave.runtime;

import dev.enclave.runtime.model.ActivationPrecision;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * How a model is loaded and run, given at load as a value: two models in one process may differ, and nothing in the
 * runtime reads a system property. The server builds it from its configuration, the CLI from its flags.
 *
 * @param backend        "auto" (follow {@code backendOrder} and what is available), or one backend's name ("cpu",
 *                       "opencl", "npu", ...)
 * @param backendOrder   the device profile's preference for "auto", best first; backends not named come after, CPU last
 * @param threads        CPU worker threads (the device profile's inference cores); 0: one per processor
 * @param activations    what the CPU's matrix products do with activations (int8 like ggml, or float)
 * @param repackQ6K      hold Q6_K matrices as int8 rows (the same values, faster products)
 * @param vocabularyInt8 hold the vocabulary-sized Q6_K matrix as int8 too (an engine batching 4+ sequences)
 * @param repackCacheDir where repacked tensors are kept between starts; null: not kept
 * @param warmup         compile the kernels during the load, so the first token does not wait for the JIT
 * @param kvType         how the KV cache stores keys and values per layer (float32, float16, 8 to 2 bits, rotated)
 */
public record RuntimeOptions(String backend, List<String> backendOrder, int threads, ActivationPrecision activations,
                             boolean repackQ6K, boolean vocabularyInt8, Path repackCacheDir, boolean warmup,
                             dev.enclave.runtime.backend.KvPlan kvType) {

    public RuntimeOptions {
        backend = backend == null || backend.isBlank() ? "auto" : backend.strip().toLowerCase(Locale.ROOT);
        backendOrder = backendOrder == null ? List.of() : backendOrder.stream().map(s -> s.strip().toLowerCase(Locale.ROOT))
                .filter(s -> !s.isEmpty()).toList();
        if (threads < 0) throw new IllegalArgumentException("threads must be 0 (one per processor) or more, not " + threads);
        Objects.requireNonNull(activations, "activations");
        if (kvType == null) kvType = dev.enclave.runtime.backend.KvPlan.F32;
    }

    /** The defaults: automatic backend, a thread per processor, int8 activations, repacking on, no repack cache. */
    public static RuntimeOptions defaults() {
        return new RuntimeOptions("auto", List.of(), 0, ActivationPrecision.Q8, true, false, null, true, null);
    }

    /** CPU threads to run with: {@link #threads}, or one per processor. */
    public int effectiveThreads() {
        return threads > 0 ? threads : Math.max(1, Runtime.getRuntime().availableProcessors());
    }

    public RuntimeOptions withBackend(String name) {
        return new RuntimeOptions(name, backendOrder, threads, activations, repackQ6K, vocabularyInt8, repackCacheDir, warmup, kvType);
    }

    public RuntimeOptions withBackendOrder(List<String> order) {
        return new RuntimeOptions(backend, order, threads, activations, repackQ6K, vocabularyInt8, repackCacheDir, warmup, kvType);
    }

    public RuntimeOptions withThreads(int n) {
        return new RuntimeOptions(backend, backendOrder, n, activations, repackQ6K, vocabularyInt8, repackCacheDir, warmup, kvType);
    }

    public RuntimeOptions withActivations(ActivationPrecision a) {
        return new RuntimeOptions(backend, backendOrder, threads, a, repackQ6K, vocabularyInt8, repackCacheDir, warmup, kvType);
    }

    public RuntimeOptions withRepackQ6K(boolean on) {
        return new RuntimeOptions(backend, backendOrder, threads, activations, on, vocabularyInt8, repackCacheDir, warmup, kvType);
    }

    public RuntimeOptions withVocabularyInt8(boolean on) {
        return new RuntimeOptions(backend, backendOrder, threads, activations, repackQ6K, on, repackCacheDir, warmup, kvType);
    }

    public RuntimeOptions withRepackCacheDir(Path dir) {
        return new RuntimeOptions(backend, backendOrder, threads, activations, repackQ6K, vocabularyInt8, dir, warmup, kvType);
    }

    public RuntimeOptions withWarmup(boolean on) {
        return new RuntimeOptions(backend, backendOrder, threads, activations, repackQ6K, vocabularyInt8, repackCacheDir, on, kvType);
    }

    public RuntimeOptions withKvType(dev.enclave.runtime.backend.KvType type) {
        return withKvPlan(dev.enclave.runtime.backend.KvPlan.of(type));
    }

    public RuntimeOptions withKvPlan(dev.enclave.runtime.backend.KvPlan plan) {
        return new RuntimeOptions(backend, backendOrder, threads, activations, repackQ6K, vocabularyInt8, repackCacheDir, warmup, plan);
    }
}
