package dev.enclave.server.cli;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.server.model.RuntimeConfig;
import picocli.CommandLine.Option;

/** The {@code --backend} option of the commands that run a model. */
public class BackendOption {

    @Option(names = "--backend", paramLabel = "NAME",
            description = "Where the layers run: cpu, cpu-java (the Java kernels only), opencl, npu or auto (default: the configuration's enclave.backend, "
                    + "else auto: the device profile's order, then what this machine has; the CPU takes what others cannot run).")
    String backend;

    /** The configuration's runtime options for {@code maxActive} sequences, with this flag applied. */
    RuntimeOptions options(int maxActive) {
        RuntimeOptions o = RuntimeConfig.options(maxActive);
        return backend == null ? o : o.withBackend(backend);
    }
}
