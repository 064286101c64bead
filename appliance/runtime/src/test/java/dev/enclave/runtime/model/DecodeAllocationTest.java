package dev.enclave.runtime.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.management.ThreadMXBean;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.backend.cpu.CpuBackend;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The decode loop allocates nothing per token once compiled: buffers live in the InferenceState, kernels use the
 * Vector API without boxing, the worker pool takes no per-call task objects. Measured with the JVM's per-thread
 * allocation counter on a single-threaded backend, after warm-up (the interpreter allocates while it warms up).
 */
class DecodeAllocationTest {

    @ParameterizedTest
    @ValueSource(strings = {"syn-llama3-bpe-Q4_0.gguf", "syn-llama2-spm-Q4_K_M.gguf", "syn-llama2-spm-Q8_0.gguf", "syn-qwen2-bpe-F32.gguf"})
    void decodeStepsDoNotAllocate(String file) throws Exception {
        ThreadMXBean mx = (ThreadMXBean) ManagementFactory.getThreadMXBean();
        CpuBackend backend = new CpuBackend(1);
        try (TransformerModel m = TransformerModel.load(SharedData.model(file), backend)) {
            InferenceState s = m.newState(512);
            int token = 1;
            for (int i = 0; i < 3000; i++) { // warm up until the kernels are compiled
                if (s.position() >= 500) s.truncate(0);
                token = (m.forward(s, token)[0] > 0 ? 3 : 5);
            }
            // steady state must not allocate; a window can still run code the JIT has queued but not yet compiled
            // (a fast machine finishes the warm-up before the compiler threads catch up, and other models ran the
            // same methods earlier in this JVM), and interpreted or C1 code boxes vectors. So: windows of 200
            // steps until one allocates nothing, for at most 30 windows.
            long best = Long.MAX_VALUE;
            StringBuilder seen = new StringBuilder();
            for (int window = 0; window < 30 && best >= 64; window++) {
                s.truncate(0);
                long before = mx.getCurrentThreadAllocatedBytes();
                int steps = 200;
                for (int i = 0; i < steps; i++) token = (m.forward(s, token)[0] > 0 ? 3 : 5);
                long perStep = (mx.getCurrentThreadAllocatedBytes() - before) / steps;
                seen.append(perStep).append(' ');
                best = Math.min(best, perStep);
            }
            assertTrue(best < 64, file + ": " + best + " bytes allocated per decode step (windows: " + seen + ")");
        } finally {
            backend.pool().close();
        }
    }
}
