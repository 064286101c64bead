package dev.enclave.rag.embed;

import java.util.List;

/** Turns text into unit-length vectors; documents and queries may be embedded differently (bge's query prefix). */
public interface Embedder extends AutoCloseable {

    /** Stable identity stored with the index: a change of name or version triggers re-embedding. */
    String name();

    String version();

    int dimension();

    /** Upper bound on tokens one input can carry; longer input is truncated, so chunkers stay below it. */
    int maxTokens();

    /** Token count of {@code text} as this embedder sees it (without special tokens). */
    int countTokens(String text);

    List<float[]> embedDocuments(List<String> texts);

    float[] embedQuery(String text);

    @Override
    void close();
}
