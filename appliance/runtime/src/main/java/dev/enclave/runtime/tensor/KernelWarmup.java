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
        if (Kernels.WIDE && (types.contains(GGMLType.Q4_0) || types.contains(GGMLType.Q4_K))) {
            // the integer route the model runs 4-bit tensors on (Q4x32Tensor), for one token and for four
            MemorySegment bytes = java.lang.foreign.Arena.ofAuto().allocate(GGMLType.Q4_0.byteSize(64L * cols), 64);
            Q4x32Tensor q = Q4x32Tensor.repack(new Q4_0Tensor(bytes, 64L * cols), 64, cols, java.lang.foreign.Arena.ofAuto());
            float[] x4 = new float[4 * cols];
            for (int i = 0; i < x4.length; i++) x4[i] = (i % 5) * 0.02f;
            Q8Activations a = new Q8Activations();
            a.quantize(x4, 0, cols, cols, 4);
            float[] out = new float[16 * 64];
            float[] x16 = new float[16 * cols];
            for (int i = 0; i < 3_000; i++) {
                q.multiply(a, 0, 0, 2, out, 0);
                q.multiply4(a, 0, 0, 2, out, 0, 64);
                if ((i & 3) == 0) q.multiplyFloat8(x16, 0, cols, 0, 2, out, 0, 64);
                if ((i & 255) == 0) a.quantize(x4, 0, cols, cols, 4);
            }
            sink += out[0];
        }
        if (sink == 42) System.out.print(""); // keep the loop alive
    }
}
