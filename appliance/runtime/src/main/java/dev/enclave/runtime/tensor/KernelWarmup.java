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

    /**
     * @param repacked4Bit whether the model runs Q4_0/Q4_K/Q8_0 on the repacked integer route ({@link Q4RowGroupTensor},
     *     {@link Q8RowGroupTensor}), whose
     *     kernels are then warmed instead of those types' float dot products
     * @param q6kSixBits whether some Q6_K matrix is repacked at 6 bits ({@link Q6RowGroupTensor}: the vocabulary-sized one)
     * @param q6kInt8 whether some Q6_K matrix is repacked as int8 ({@link Int8RowGroupTensor}: layers, or the
     *     vocabulary-sized one when asked)
     * @param samples per type, memory of the model's own weights of that type (its mapped file): the kernels are run
     *     on a slice of it, so the JIT profiles the segment kind the model will use (warming a float kernel on native
     *     memory and then running it on mapped memory measured 40% slower decoding on Q8_0)
     */
    public static void warmUp(Set<GGMLType> types, boolean repacked4Bit, boolean q6kSixBits, boolean q6kInt8,
                              java.util.Map<GGMLType, MemorySegment> samples) {
        try {
            run(types, repacked4Bit, q6kSixBits, q6kInt8, samples);
        } catch (IllegalStateException closed) {
            // the model's memory was closed under the warm-up (its load failed, or it was closed at once): nothing
            // is left to warm up for, and a background thread has no one to report to
        }
    }

    private static void run(Set<GGMLType> types, boolean repacked4Bit, boolean q6kSixBits, boolean q6kInt8,
                            java.util.Map<GGMLType, MemorySegment> samples) {
        int cols = 512;
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (i % 7) * 0.01f;
        float sink = 0;
        for (GGMLType t : types) {
            if (!t.hasKnownLayout() || t.blockSize > cols) continue;
            if (repacked4Bit && RowGroupTensor.AVAILABLE && (t == GGMLType.Q4_0 || t == GGMLType.Q4_K || t == GGMLType.Q6_K
                    || t == GGMLType.Q8_0 && Q8RowGroupTensor.PREFERRED)) continue;
            MemorySegment sample = samples.get(t);
            MemorySegment bytes = sample != null && sample.byteSize() >= t.byteSize(cols) ? sample.asSlice(0, t.byteSize(cols))
                    : java.lang.foreign.Arena.ofAuto().allocate(t.byteSize(cols), 64);
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
        if (repacked4Bit && RowGroupTensor.AVAILABLE) {
            // the integer route, one and four tokens, on the smallest tensors of each kind: interpreted Vector API code
            // is very slow, so short calls reach the compile thresholds (invocation counts) soonest
            for (GGMLType t : new GGMLType[] {GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.Q8_0}) {
                if (!types.contains(t) || t == GGMLType.Q8_0 && !Q8RowGroupTensor.PREFERRED) continue;
                int c = t == GGMLType.Q4_0 || t == GGMLType.Q8_0 ? 32 : 256;
                MemorySegment bytes = java.lang.foreign.Arena.ofAuto().allocate(t.byteSize(32L * c), 64);
                FloatTensor src = FloatTensor.of(t, bytes, 32L * c);
                java.util.List<RowGroupTensor> kernels = new java.util.ArrayList<>();
                if (t == GGMLType.Q8_0) {
                    kernels.add(Q8RowGroupTensor.repack(src, 32, c, java.lang.foreign.Arena.ofAuto()));
                } else if (t != GGMLType.Q6_K) {
                    kernels.add(Q4RowGroupTensor.repack(src, 32, c, java.lang.foreign.Arena.ofAuto()));
                } else {
                    if (q6kSixBits) kernels.add(Q6RowGroupTensor.repack((Q6_KTensor) src, 32, c, java.lang.foreign.Arena.ofAuto()));
                    if (q6kInt8) kernels.add(Int8RowGroupTensor.repack((Q6_KTensor) src, 32, c, java.lang.foreign.Arena.ofAuto()));
                }
                float[] x4 = new float[4 * c];
                for (int i = 0; i < x4.length; i++) x4[i] = (i % 5) * 0.02f;
                Q8Activations a = new Q8Activations();
                float[] out = new float[4 * 32];
                for (RowGroupTensor q : kernels) {
                    for (int i = 0; i < 2_000; i++) {
                        a.quantize(x4, 0, c, c, 4);
                        q.multiply(a, 0, 0, 1, out, 0);
                        q.multiply4(a, 0, 0, 1, out, 0, 32);
                    }
                    sink += out[0];
                }
            }
        }
        if (sink == 42) System.out.print(""); // keep the loop alive
    }
}
