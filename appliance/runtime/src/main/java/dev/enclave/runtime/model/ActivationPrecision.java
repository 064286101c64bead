package dev.enclave.runtime.model;

import java.util.Locale;

/**
 * What matrix products do with the activations on the CPU.
 * <ul>
 *   <li>{@link #Q8}: like ggml, quantize them to int8 per block of 32 and multiply 4-bit weights (Q4_0, Q4_K)
 *       with integer arithmetic, on those tensors repacked at load: several times faster decoding, and results that
 *       track llama.cpp's (which quantizes the same way);</li>
 *   <li>{@link #FLOAT}: keep them float32 for every type: slower, agrees with an exact float64 forward pass to
 *       within float rounding.</li>
 * </ul>
 * Chosen per load in {@link dev.enclave.runtime.RuntimeOptions}; the server's key is {@code enclave.activations}.
 */
public enum ActivationPrecision {
    FLOAT, Q8;

    /** "q8", or "float" (also "f32"). */
    public static ActivationPrecision parse(String v) {
        return switch (v.strip().toLowerCase(Locale.ROOT)) {
            case "q8" -> Q8;
            case "float", "f32" -> FLOAT;
            default -> throw new IllegalArgumentException("activations must be q8 or float, not " + v);
        };
    }
}
