package dev.enclave.rag;

import dev.enclave.rag.embed.EmbeddingModel;
import dev.enclave.rag.embed.OnnxEmbedder;

import java.nio.file.Path;

/** One real MiniLM embedder shared by the tests of this JVM (loading it takes about half a second). */
public final class TestEmbedder {
    private static OnnxEmbedder instance;

    private TestEmbedder() {
    }

    public static synchronized OnnxEmbedder get() {
        if (instance == null) instance = new OnnxEmbedder(EmbeddingModel.MINILM_L6_Q, Path.of("target/native"), 2);
        return instance;
    }
}
