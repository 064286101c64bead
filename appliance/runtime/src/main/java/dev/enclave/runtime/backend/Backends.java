package dev.enclave.runtime.backend;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.cpu.CpuBackend;
import dev.enclave.runtime.serve.EngineProvider;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Finds the backends on the class path ({@link ServiceLoader}; the CPU's is always there) and puts them in the order
 * a model's layers try them: the one named in {@link RuntimeOptions#backend}, or for "auto" the device profile's
 * order ({@link RuntimeOptions#backendOrder}) then the others by priority. The CPU comes last whatever the order
 * says: it runs every layer, so the layers another backend cannot run go there.
 */
public final class Backends {

    /** The names {@code --backend} takes besides a discovered backend's own. */
    public static final List<String> KNOWN = List.of("auto", "cpu", "cpu-java", "opencl", "npu");

    private Backends() {
    }

    /** Every available backend, the CPU's (with the options' threads) first, then the discovered ones by priority. */
    public static List<Backend> available(RuntimeOptions options) {
        List<Backend> found = new ArrayList<>();
        for (Backend b : ServiceLoader.load(Backend.class)) {
            if (!(b instanceof CpuBackend) && b.isAvailable()) found.add(b);
        }
        found.sort(Comparator.comparingInt(Backend::priority).reversed());
        // the CPU: with its native kernels where a library exists for it, unless the Java kernels are asked for, or
        // float activations (the native kernels quantize them)
        boolean java = options.backend().equals("cpu-java") || options.activations() == dev.enclave.runtime.model.ActivationPrecision.FLOAT;
        found.addFirst(java ? CpuBackend.sharedJava(options.effectiveThreads()) : CpuBackend.shared(options.effectiveThreads()));
        return List.copyOf(found);
    }

    /**
     * The backends a model's layers try, in order; the CPU last.
     *
     * @throws IllegalArgumentException naming what is available, when the named backend is not
     */
    public static List<Backend> order(RuntimeOptions options) {
        return order(options, available(options));
    }

    static List<Backend> order(RuntimeOptions options, List<Backend> available) {
        Backend cpu = available.getFirst();
        List<Backend> order = new ArrayList<>();
        if (!options.backend().equals("auto") && !isEngine(options.backend())) {
            Backend b = find(available, options.backend());
            if (b == null) {
                List<String> names = new ArrayList<>(available.stream().map(Backend::name).toList());
                for (EngineProvider p : ServiceLoader.load(EngineProvider.class)) names.add(p.name());
                throw new IllegalArgumentException("backend '" + options.backend() + "' is not available on this machine (available: "
                        + String.join(", ", names) + ")");
            }
            order.add(b);
        } else {
            for (String name : options.backendOrder()) {
                Backend b = find(available, name);
                if (b != null && !order.contains(b) && b != cpu) order.add(b);
            }
            for (Backend b : available) if (!order.contains(b) && b != cpu) order.add(b);
        }
        if (!order.contains(cpu)) order.add(cpu);
        return List.copyOf(order);
    }

    /**
     * Whether {@code name} is a whole-model engine's ({@link EngineProvider}): the model's layers then stay on the
     * backends "auto" picks (the host keeps its tokenizer and template), and the engine runs it.
     */
    public static boolean isEngine(String name) {
        for (EngineProvider p : ServiceLoader.load(EngineProvider.class)) if (p.name().equals(name)) return true;
        return false;
    }

    private static Backend find(List<Backend> backends, String name) {
        if (name.equals("cpu") || name.equals("cpu-java")) return backends.getFirst(); // the CPU, whichever kernels it runs
        for (Backend b : backends) if (b.name().equals(name)) return b;
        return null;
    }
}
