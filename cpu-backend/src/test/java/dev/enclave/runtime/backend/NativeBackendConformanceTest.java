package dev.enclave.runtime.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

/** The runtime's conformance test with the native kernels on the class path: "cpu" is then the native backend. */
class NativeBackendConformanceTest extends BackendConformanceTest {

    @Test
    void theCpuBackendRunsTheNativeKernels() {
        CpuBackend cpu = (CpuBackend) Backends.available(RuntimeOptions.defaults()).getFirst();
        assertNotNull(cpu.nativeKernels(), "the library for this CPU loads");
        assertEquals("cpu", cpu.name());
        assertEquals("cpu-java", Backends.available(RuntimeOptions.defaults().withBackend("cpu-java")).getFirst().name());
    }
}
