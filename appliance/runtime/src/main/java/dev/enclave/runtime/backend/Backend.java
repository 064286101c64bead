package dev.enclave.runtime.backend;

/**
 * A device that runs model computation. The runtime takes two shapes of backend:
 * <ul>
 *   <li>{@link KernelBackend}: per-operation kernels (matmul, norms, attention) that the runtime's own forward
 *       pass calls, as the CPU and OpenCL backends do;</li>
 *   <li>{@link GraphBackend}: whole-graph executors that take a compiled model and run a full step themselves,
 *       as a Qualcomm SNPE DLC or a Genie dialog does.</li>
 * </ul>
 * Backends are found with {@link java.util.ServiceLoader} (see {@link Backends}); the runtime itself knows none
 * but the CPU one.
 */
public sealed interface Backend permits KernelBackend, GraphBackend {

    /** Short stable name: "cpu", "opencl", "snpe", ... */
    String name();

    /** Whether the device and its drivers are present on this machine. */
    boolean isAvailable();

    /** Higher wins when several available backends can run the same model. */
    default int priority() {
        return 0;
    }
}
