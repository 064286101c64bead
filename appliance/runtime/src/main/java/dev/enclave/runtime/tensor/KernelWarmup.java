package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.util.Set;

/**
 * Runs the dot-product kernels of the given types on small in-memory tensors so the JIT compiles them before the
 * first real token: interpreted Vector API code is orders of magnitude slower than compiled, and a model's first
 * forward pass would otherwise pay for that on gigabytes of weights. Takes a few hundred milliseconds.
 */
public final class KernelWarmup {

    private KernelWarmup() {
    }

    public static void warmUp(Set<GGMLType> types) {
        int cols = 512;
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (i % 7) * 0.01f;
        float sink = 0;
        for (GGMLType t : types) {
            if (!t.hasKnownLayout() || t.blockSize > cols) continue;
            // native memory, like the mapped weights: the JIT must see the same segment kind it will run on
            MemorySegment bytes = java.lang.foreign.Arena.ofAuto().allocate(t.byteSize(cols), 64);
            FloatTensor tensor;
            try {
                tensor = FloatTensor.of(t, bytes, cols);
            } catch (RuntimeException unsupported) {
                continue;
            }
            if (tensor instanceof Q6_KTensor q6) {
                tensor = Int8RowsTensor.fromQ6_K(q6, java.lang.foreign.Arena.ofAuto()); // what the model runs Q6_K as
            }
            float[] row = new float[cols];
            for (int i = 0; i < 4_000; i++) {
                sink += tensor.dot(0, x, 0, cols);
                if ((i & 63) == 0) tensor.copyTo(0, row, 0, cols);
            }
        }
        if (sink == 42) System.out.print(""); // keep the loop alive
    }
}
