package dev.enclave.server.model;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.model.ActivationPrecision;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.eclipse.microprofile.config.Config;
import org.eclipse.microprofile.config.ConfigProvider;

/**
 * The runtime's options as this application's configuration gives them (application.properties, the device profile's
 * file, {@code -D} flags): the runtime itself reads no property, it is handed this value at load.
 * <ul>
 *   <li>{@code enclave.backend}: auto (default), cpu, opencl, npu; {@code enclave.backend.order}: the device profile's
 *       preference for auto, e.g. {@code npu,opencl,cpu};</li>
 *   <li>{@code enclave.threads}: CPU worker threads (0 or unset: one per processor);</li>
 *   <li>{@code enclave.activations}: q8 (default) or float;</li>
 *   <li>{@code enclave.vocabulary-int8}: the vocabulary-sized Q6_K matrix as int8 (default: when 4 or more sequences
 *       are decoded at once, where its batch products are ~1.4x faster, ~5% of the 8-client throughput, for 65 MB on
 *       a 1B model);</li>
 *   <li>{@code enclave.repack-cache}: where repacked tensors are kept (default {@code DATA_DIR/cache});</li>
 *   <li>{@code enclave.warmup}: compile the kernels during the load (default true).</li>
 * </ul>
 */
public final class RuntimeConfig {

    private RuntimeConfig() {
    }

    /** The commands that load a model outside the server, and so read these options. */
    public static final java.util.Set<String> LOADS_MODEL = java.util.Set.of("generate", "tokenize", "logits", "perplexity", "bench");

    /** Builds the application's configuration ahead of {@link #options}, which then finds it made. */
    public static void prepare() {
        try {
            ConfigProvider.getConfig();
        } catch (RuntimeException e) {
            // options() meets the same failure on the command's own thread and reports it there
        }
    }

    /** The options for a model served with {@code maxActive} sequences at once (1 for a CLI command). */
    public static RuntimeOptions options(int maxActive) {
        Config c = ConfigProvider.getConfig();
        String dataDir = c.getOptionalValue("enclave.data-dir", String.class).orElse("data");
        Path cache = Path.of(c.getOptionalValue("enclave.repack-cache", String.class).orElse(Path.of(dataDir, "cache").toString()))
                .toAbsolutePath();
        List<String> order = c.getOptionalValue("enclave.backend.order", String.class)
                .map(s -> Arrays.stream(s.split(",")).map(String::strip).filter(x -> !x.isEmpty()).toList()).orElse(List.of());
        return new RuntimeOptions(
                c.getOptionalValue("enclave.backend", String.class).orElse("auto"),
                order,
                Math.max(0, c.getOptionalValue("enclave.threads", Integer.class).orElse(0)),
                ActivationPrecision.parse(c.getOptionalValue("enclave.activations", String.class).orElse("q8")),
                c.getOptionalValue("enclave.repack-q6k", Boolean.class).orElse(true),
                c.getOptionalValue("enclave.vocabulary-int8", Boolean.class).orElse(maxActive >= 4),
                cache,
                c.getOptionalValue("enclave.warmup", Boolean.class).orElse(true),
                dev.enclave.runtime.backend.KvPlan.parse(c.getOptionalValue("enclave.kv-type", String.class).orElse("f32")));
    }
}
