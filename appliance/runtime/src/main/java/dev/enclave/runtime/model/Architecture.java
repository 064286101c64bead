package dev.enclave.runtime.model;

import dev.enclave.runtime.ModelFormatException;
import java.util.Arrays;

/**
 * The decoder-only transformer families this runtime runs, with what sets each apart from plain Llama. All share
 * one forward pass ({@link TransformerModel}); these flags switch its variations on.
 */
public enum Architecture {
    /** Llama 2/3.x, Mistral, SmolLM, DeepSeek-R1-Distill-Llama: adjacent-pair RoPE, optional rope_freqs, SwiGLU. */
    LLAMA("llama", RopeStyle.NORMAL, false, false, false),
    /** Qwen2/2.5, DeepSeek-R1-Distill-Qwen: q/k/v biases, NEOX RoPE. */
    QWEN2("qwen2", RopeStyle.NEOX, true, false, false),
    /** Qwen3: RMSNorm on q and k per head, NEOX RoPE, no biases. */
    QWEN3("qwen3", RopeStyle.NEOX, false, true, false),
    /** Phi-3/3.5: fused qkv and gate-up projections, NEOX RoPE, sliding window. */
    PHI3("phi3", RopeStyle.NEOX, false, false, false),
    /** Gemma 2: GeGLU, pre and post norms, scaled embeddings, attention and final logit soft-capping. */
    GEMMA2("gemma2", RopeStyle.NEOX, false, false, true),
    /** Gemma 3 (text): as Gemma 2 with q/k norms, local/global layers, no soft-capping. */
    GEMMA3("gemma3", RopeStyle.NEOX, false, true, true);

    public enum RopeStyle {
        /** Rotate adjacent pairs (x[2i], x[2i+1]). */
        NORMAL,
        /** Rotate halves (x[i], x[i + d/2]). */
        NEOX
    }

    public final String ggufName;
    public final RopeStyle rope;
    public final boolean qkvBias;
    public final boolean qkNorm;
    public final boolean gemma;

    Architecture(String ggufName, RopeStyle rope, boolean qkvBias, boolean qkNorm, boolean gemma) {
        this.ggufName = ggufName;
        this.rope = rope;
        this.qkvBias = qkvBias;
        this.qkNorm = qkNorm;
        this.gemma = gemma;
    }

    public static Architecture fromGGUF(String name) {
        for (Architecture a : values()) {
            if (a.ggufName.equals(name)) return a;
        }
        throw new ModelFormatException("unsupported model architecture '" + name + "' (supported: "
                + String.join(", ", Arrays.stream(values()).map(a -> a.ggufName).toList()) + ")");
    }
}
