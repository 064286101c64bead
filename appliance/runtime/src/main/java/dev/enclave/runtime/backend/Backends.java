package dev.enclave.runtime.backend;

import dev.enclave.runtime.backend.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/** Discovers backends on the class path (ServiceLoader) and always offers the CPU backend. */
public final class Backends {

    private Backends() {
    }

    /** All available backends, best first; the CPU backend is always present. */
    public static List<Backend> available() {
        List<Backend> found = new ArrayList<>();
        found.add(CpuBackend.instance());
        for (Backend b : ServiceLoader.load(Backend.class)) {
            if (!(b instanceof CpuBackend) && b.isAvailable()) {
                found.add(b);
            }
        }
        found.sort(Comparator.comparingInt(Backend::priority).reversed());
        return List.copyOf(found);
    }
}
