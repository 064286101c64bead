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
 * allocation counter on a single-threaded backend, on compiled code: after warm-up, and judged only once the JIT
 * compiler has gone quiet (the interpreter and C1 allocate, and under load C2 arrives late).
 */
class DecodeAllocationTest {

    /** No method being compiled and none queued, by the JVM's own diagnostic command (what {@code jcmd Compiler.queue} prints). */
    static boolean compilerIdle() throws Exception {
        Object out = ManagementFactory.getPlatformMBeanServer().invoke(new javax.management.ObjectName("com.sun.management:type=DiagnosticCommand"),
                "compilerQueue", new Object[] {null}, new String[] {String[].class.getName()});
        boolean current = false, idle = true;
        for (String line : out.toString().split("\\R")) {
            String l = line.strip();
            if (l.startsWith("Current compiles")) {
                current = true;
            } else if (l.endsWith("compile queue:")) {
                current = false;
            } else if (!l.isEmpty() && !l.equals("Empty") && !(current && l.endsWith(" idle"))) {
                idle = false; // a compile in progress, or one waiting in a queue
            }
        }
        return idle;
    }

    /**
     * Runs windows of {@code steps} calls of {@code step} until one allocates under 64 bytes per call (null: pass), or
     * until the compiler has been idle for three windows in a row (nothing compiling or queued, by the JVM's own
     * Compiler.queue: what runs is what will run) while each still allocated; then the bytes per call of every window
     * ("q" where no compilation happened during it). A time cap only guards against a compiler that never settles.
     */
    static String allocationWindows(ThreadMXBean mx, int steps, Runnable step) throws Exception {
        var compiler = ManagementFactory.getCompilationMXBean();
        long best = Long.MAX_VALUE;
        int quietAllocating = 0;
        long deadline = System.nanoTime() + 300_000_000_000L;
        StringBuilder seen = new StringBuilder();
        while (best >= 64 && quietAllocating < 3 && System.nanoTime() < deadline) {
            long compiling = compiler.getTotalCompilationTime();
            boolean idleBefore = compilerIdle();
            long before = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < steps; i++) step.run();
            long perStep = (mx.getCurrentThreadAllocatedBytes() - before) / steps;
            // quiet: nothing compiled, compiling or queued from the window's start to its end (a long C2 compile of a
            // big kernel finishes, and is counted, only at its end)
            boolean quiet = idleBefore && compiler.getTotalCompilationTime() == compiling && compilerIdle();
            seen.append(perStep).append(quiet ? "q " : " ");
            best = Math.min(best, perStep);
            quietAllocating = perStep >= 64 && quiet ? quietAllocating + 1 : 0;
        }
        return best < 64 ? null : seen.toString().strip();
    }

    /**
     * Prompt chunks of 8 tokens (the four-token kernels, {@code multiply4}) must not allocate either: the same windows
     * as below, each step a whole chunk through preallocated arrays.
     */
    @ParameterizedTest
    @ValueSource(strings = {"syn-llama3-bpe-Q4_0.gguf", "syn-llama2-spm-Q4_K_M.gguf"})
    void promptChunksDoNotAllocate(String file) throws Exception {
        ThreadMXBean mx = (ThreadMXBean) ManagementFactory.getThreadMXBean();
        CpuBackend backend = new CpuBackend(1);
        // no background warm-up: while one compiles the four-token kernels, batches run token by token (another kernel)
        try (TransformerModel m = TransformerModel.load(SharedData.model(file), dev.enclave.runtime.RuntimeOptions.defaults().withWarmup(false),
                java.util.List.of(backend))) {
            InferenceState s = m.newState(512);
            Workspace ws = m.newWorkspace(8, 1);
            InferenceState[] one = {s};
            int[][] tokens = {{1, 5, 9, 3, 7, 2, 11, 4}};
            int[] from = {0}, count = {8};
            for (int i = 0; i < 1500; i++) { // warm up until the batch kernels are compiled
                if (s.position() >= 500) s.truncate(0);
                m.forward(ws, one, tokens, from, count);
            }
            String windows = allocationWindows(mx, 60, () -> {
                if (s.position() >= 500) s.truncate(0);
                m.forward(ws, one, tokens, from, count);
            });
            assertTrue(windows == null, file + ": bytes allocated per 8-token chunk with the compiler idle (windows, "
                    + "q = no compilation during it: " + windows + ")");
        } finally {
            backend.pool().close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"syn-llama3-bpe-Q4_0.gguf", "syn-llama2-spm-Q4_K_M.gguf", "syn-llama2-spm-Q8_0.gguf", "syn-qwen2-bpe-F32.gguf"})
    void decodeStepsDoNotAllocate(String file) throws Exception {
        ThreadMXBean mx = (ThreadMXBean) ManagementFactory.getThreadMXBean();
        CpuBackend backend = new CpuBackend(1);
        try (TransformerModel m = TransformerModel.load(SharedData.model(file), dev.enclave.runtime.RuntimeOptions.defaults(), java.util.List.of(backend))) {
            InferenceState s = m.newState(512);
            int token = 1;
            for (int i = 0; i < 3000; i++) { // warm up until the kernels are compiled
                if (s.position() >= 500) s.truncate(0);
                token = (m.forward(s, token)[0] > 0 ? 3 : 5);
            }
            // Steady state must not allocate. What that means is compiled code: code the JIT has queued but not yet
            // compiled runs interpreted or in C1 and boxes vectors, and under CPU load (a busy CI box, other tests)
            // the compiler threads fall behind the warm-up by any number of windows (see allocationWindows).
            int[] t = {token};
            boolean[] start = {true};
            String windows = allocationWindows(mx, 200, () -> {
                if (start[0] || s.position() >= 500) s.truncate(0);
                start[0] = false;
                t[0] = m.forward(s, t[0])[0] > 0 ? 3 : 5;
            });
            assertTrue(windows == null, file + ": bytes allocated per decode step with the compiler idle (windows, "
                    + "q = no compilation during it: " + windows + ")");
        } finally {
            backend.pool().close();
        }
    }
}
