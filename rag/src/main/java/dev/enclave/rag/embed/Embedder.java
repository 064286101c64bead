package dev.enclave.rag.embed;

import java.util.List;
import java.util.concurrent.CompletableFuture;

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

    /**
     * Starts embedding {@code texts} and returns at once, so the caller can prepare (or store) other documents
     * while this runs. The default embeds on the calling thread.
     */
    default CompletableFuture<List<float[]>> embedDocumentsAsync(List<String> texts) {
        try {
            return CompletableFuture.completedFuture(embedDocuments(texts));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    float[] embedQuery(String text);

    @Override
    void close();
}
