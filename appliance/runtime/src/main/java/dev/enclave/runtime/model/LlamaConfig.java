package dev.enclave.runtime.model;

import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFFormatException;
import java.util.Set;

/** Hyper-parameters of a Llama-family model, read from GGUF metadata under the architecture's prefix. */
public record LlamaConfig(
        String architecture,
        int embeddingLength,
        int blockCount,
        int headCount,
        int headCountKv,
        int headDim,
        int feedForwardLength,
        int contextLength,
        int ropeDimensions,
        float ropeFreqBase,
        float rmsEps,
        int vocabularySize) {

    /** Architectures whose forward pass this runtime implements. */
    public static final Set<String> SUPPORTED = Set.of("llama");

    public int kvDim() {
        return headCountKv * headDim;
    }

    public static LlamaConfig from(GGUFFile gguf) {
        String arch = gguf.getString("general.architecture");
        if (!SUPPORTED.contains(arch)) {
            throw new UnsupportedOperationException("unsupported model architecture '" + arch + "' (supported: " + SUPPORTED + ")");
        }
        int dim = positive(gguf, arch + ".embedding_length");
        int heads = positive(gguf, arch + ".attention.head_count");
        int kvHeads = gguf.has(arch + ".attention.head_count_kv") ? positive(gguf, arch + ".attention.head_count_kv") : heads;
        if (dim % heads != 0) {
            throw new GGUFFormatException("embedding length " + dim + " is not divisible by the head count " + heads);
        }
        if (heads % kvHeads != 0) {
            throw new GGUFFormatException("head count " + heads + " is not a multiple of the KV head count " + kvHeads);
        }
        int headDim = gguf.getInt(arch + ".attention.key_length", dim / heads);
        int ropeDims = gguf.getInt(arch + ".rope.dimension_count", headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0) {
            throw new GGUFFormatException("rope dimension count " + ropeDims + " must be even and at most the head size " + headDim);
        }
        int vocab = gguf.getArray("tokenizer.ggml.tokens").length();
        return new LlamaConfig(arch, dim,
                positive(gguf, arch + ".block_count"),
                heads, kvHeads, headDim,
                positive(gguf, arch + ".feed_forward_length"),
                positive(gguf, arch + ".context_length"),
                ropeDims,
                gguf.getFloat(arch + ".rope.freq_base", 10000f),
                gguf.getFloat(arch + ".attention.layer_norm_rms_epsilon", 1e-5f),
                vocab);
    }

    private static int positive(GGUFFile gguf, String key) {
        long v = gguf.getLong(key);
        if (v <= 0 || v > (1 << 24)) {
            throw new GGUFFormatException("metadata '" + key + "' = " + v + " is out of range");
        }
        return (int) v;
    }
}
