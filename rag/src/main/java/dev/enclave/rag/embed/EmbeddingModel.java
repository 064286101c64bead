package dev.enclave.rag.embed;

import java.util.Arrays;
import java.util.Locale;

/**
 * The embedding models bundled in Maven Central jars (ONNX, int8-quantized), with what each needs to be used
 * correctly: its pooling, its input limit and its query prefix.
 */
public enum EmbeddingModel {
    /** sentence-transformers/all-MiniLM-L6-v2: mean pooling over real tokens, trained on 256-token inputs. */
    MINILM_L6_Q("all-minilm-l6-v2-q", "/all-minilm-l6-v2-q.onnx", "/all-minilm-l6-v2-q-tokenizer.json",
            384, 256, Pooling.MEAN, ""),
    /** BAAI/bge-small-en-v1.5: CLS pooling, 512 tokens, an instruction prefix on queries only. */
    BGE_SMALL_Q("bge-small-en-v1.5-q", "/bge-small-en-v1.5-q.onnx", "/bge-small-en-v1.5-q-tokenizer.json",
            384, 512, Pooling.CLS, "Represent this sentence for searching relevant passages: ");

    public enum Pooling { MEAN, CLS }

    public final String id;
    final String modelResource;
    final String tokenizerResource;
    public final int dimension;
    public final int maxTokens;
    public final Pooling pooling;
    public final String queryPrefix;

    EmbeddingModel(String id, String modelResource, String tokenizerResource, int dimension, int maxTokens,
                   Pooling pooling, String queryPrefix) {
        this.id = id;
        this.modelResource = modelResource;
        this.tokenizerResource = tokenizerResource;
        this.dimension = dimension;
        this.maxTokens = maxTokens;
        this.pooling = pooling;
        this.queryPrefix = queryPrefix;
    }

    /** Accepts the id or a short name: minilm, bge, bge-small. */
    public static EmbeddingModel named(String name) {
        String n = name.toLowerCase(Locale.ROOT).trim();
        for (EmbeddingModel m : values()) {
            if (m.id.equals(n) || m.name().equalsIgnoreCase(n)) return m;
        }
        if (n.startsWith("minilm") || n.startsWith("all-minilm")) return MINILM_L6_Q;
        if (n.startsWith("bge")) return BGE_SMALL_Q;
        throw new IllegalArgumentException("unknown embedder '" + name + "'; known: "
                + Arrays.stream(values()).map(m -> m.id).toList());
    }
}
