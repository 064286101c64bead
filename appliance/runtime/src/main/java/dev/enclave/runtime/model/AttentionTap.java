package dev.enclave.runtime.model;

/**
 * Sees each layer's queries, keys and values before RoPE, as host copies (calibration of a transform-coded KV cache:
 * {@link TransformerModel#tap}). Not for serving: a tapped model copies every step's activations.
 */
public interface AttentionTap {
    /** {@code q}: tokens × qDim, {@code k} and {@code v}: tokens × kvDim, row-major; the arrays are reused after the call. */
    void observe(int layer, float[] q, float[] k, float[] v, int tokens);
}
