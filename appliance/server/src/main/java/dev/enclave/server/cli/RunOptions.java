package dev.enclave.server.cli;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.server.model.RuntimeConfig;
import picocli.CommandLine.Option;

/** How the commands that run a model run it: where its layers go ({@code --backend}) and its KV cache type ({@code --kv-type}). */
public class RunOptions {

    @Option(names = "--backend", paramLabel = "NAME",
            description = "Where the layers run: cpu, cpu-java (the Java kernels only), opencl, npu or auto (default: the configuration's enclave.backend, "
                    + "else auto: the device profile's order, then what this machine has; the CPU takes what others cannot run).")
    String backend;

    @Option(names = "--kv-type", paramLabel = "TYPE",
            description = "KV cache type: f32, f16, q8, q4, q3, q2, with r for rotated before quantizing (q4r), K/V for different keys and "
                    + "values (q8/q4r), one per layer, comma-separated (as perplexity --kv-budget prints), or tc:FILE (a transform code saved by "
                    + "perplexity --kv-code --save-kv-code); default: the configuration's "
                    + "enclave.kv-type, else f32.",
            converter = KvPlanConverter.class)
    KvPlan kvType;

    static final class KvPlanConverter implements picocli.CommandLine.ITypeConverter<KvPlan> {
        @Override
        public KvPlan convert(String value) {
            try {
                return KvPlan.parse(value);
            } catch (IllegalArgumentException e) {
                throw new picocli.CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** The configuration's runtime options for {@code maxActive} sequences, with this flag applied. */
    RuntimeOptions options(int maxActive) {
        RuntimeOptions o = RuntimeConfig.options(maxActive);
        if (kvType != null) o = o.withKvPlan(kvType);
        return backend == null ? o : o.withBackend(backend);
    }
}
