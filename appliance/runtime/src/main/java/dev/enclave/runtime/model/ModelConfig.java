package dev.enclave.runtime.model;

import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFFormatException;

/** Hyper-parameters of a decoder model, read from GGUF metadata under the architecture's prefix. */
public record ModelConfig(
        Architecture arch,
        int embeddingLength,
        int blockCount,
        int headCount,
        int headCountKv,
        int headDim,
        int feedForwardLength,
        int contextLength,
        int ropeDimensions,
        float ropeFreqBase,
        /** RoPE base of sliding-window layers (Gemma 3 local layers), else the same as ropeFreqBase. */
        float ropeFreqBaseLocal,
        /** Linear RoPE scaling factor (positions divided by it), 1 when none. */
        float ropeScale,
        float rmsEps,
        int vocabularySize,
        /** Tokens a sliding-window layer can see, 0 when no layer slides. */
        int slidingWindow,
        /** Every n-th layer (1-based) is global, the others slide; 0: all slide when slidingWindow > 0. */
        int slidingWindowPattern,
        float attentionScale,
        float attnSoftcap,
        float finalSoftcap) {

    public String architecture() {
        return arch.ggufName;
    }

    public int kvDim() {
        return headCountKv * headDim;
    }

    public int qDim() {
        return headCount * headDim;
    }

    /** Whether layer {@code l} uses the sliding window. */
    public boolean isSlidingLayer(int l) {
        if (slidingWindow <= 0) return false;
        return switch (arch) {
            case GEMMA2 -> l % 2 == 0;
            case GEMMA3 -> slidingWindowPattern <= 0 || (l + 1) % slidingWindowPattern != 0;
            default -> true;
        };
    }

    public static ModelConfig from(GGUFFile gguf) {
        String name = gguf.getString("general.architecture");
        Architecture arch = Architecture.fromGGUF(name);
        String p = name + ".";
        int dim = positive(gguf, p + "embedding_length");
        int heads = positive(gguf, p + "attention.head_count");
        int kvHeads = gguf.has(p + "attention.head_count_kv") ? positive(gguf, p + "attention.head_count_kv") : heads;
        if (heads % kvHeads != 0) {
            throw new GGUFFormatException("head count " + heads + " is not a multiple of the KV head count " + kvHeads);
        }
        int headDim = gguf.has(p + "attention.key_length") ? positive(gguf, p + "attention.key_length") : dim / heads;
        if (!gguf.has(p + "attention.key_length") && dim % heads != 0) {
            throw new GGUFFormatException("embedding length " + dim + " is not divisible by the head count " + heads);
        }
        int valueDim = gguf.has(p + "attention.value_length") ? positive(gguf, p + "attention.value_length") : headDim;
        if (valueDim != headDim) {
            throw new GGUFFormatException("attention.value_length " + valueDim + " differs from key_length " + headDim + " (not supported)");
        }
        int ropeDims = gguf.getInt(p + "rope.dimension_count", headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0) {
            throw new GGUFFormatException("rope dimension count " + ropeDims + " must be even and at most the head size " + headDim);
        }
        int vocab = gguf.getArray("tokenizer.ggml.tokens").length();
        float base = gguf.getFloat(p + "rope.freq_base", 10000f);
        float ropeScale = 1f;
        String scalingType = gguf.getString(p + "rope.scaling.type", "none");
        if (scalingType.equals("linear")) {
            ropeScale = gguf.getFloat(p + "rope.scaling.factor", 1f);
            if (!(ropeScale > 0f)) throw new GGUFFormatException(p + "rope.scaling.factor must be positive");
        } else if (!scalingType.equals("none") && !scalingType.equals("yarn")) {
            throw new GGUFFormatException("rope scaling type '" + scalingType + "' is not supported");
        }
        int window = gguf.getInt(p + "attention.sliding_window", 0);
        float eps = gguf.getFloat(p + "attention.layer_norm_rms_epsilon", arch.gemma ? 1e-6f : 1e-5f);
        float scale = (float) (1.0 / Math.sqrt(headDim));
        float attnCap = 0f;
        float finalCap = 0f;
        int pattern = 0;
        float baseLocal = base;
        if (arch == Architecture.GEMMA2) {
            attnCap = gguf.getFloat(p + "attn_logit_softcapping", 50f);
            finalCap = gguf.getFloat(p + "final_logit_softcapping", 30f);
            if (window == 0) window = 4096;
        } else if (arch == Architecture.GEMMA3) {
            pattern = 6;
            baseLocal = 10000f;
        }
        if (arch.gemma && gguf.getInt(p + "block_count") == 46) {
            scale = (float) (1.0 / Math.sqrt((double) dim / heads)); // the 27B models scale by n_embd / n_head
        }
        return new ModelConfig(arch, dim,
                positive(gguf, p + "block_count"),
                heads, kvHeads, headDim,
                positive(gguf, p + "feed_forward_length"),
                positive(gguf, p + "context_length"),
                ropeDims, base, baseLocal, ropeScale, eps, vocab, window, pattern, scale, attnCap, finalCap);
    }

    private static int positive(GGUFFile gguf, String key) {
        long v = gguf.getLong(key);
        if (v <= 0 || v > (1 << 24)) {
            throw new GGUFFormatException("metadata '" + key + "' = " + v + " is out of range");
        }
        return (int) v;
    }
}
