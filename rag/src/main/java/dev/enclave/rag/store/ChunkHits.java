package dev.enclave.rag.store;

import java.io.IOException;
import java.util.Collection;
import java.util.List;

/** The index's raw search sides, for the retriever (which lives in another package). */
public final class ChunkHits {

    public record Hit(long chunkId, long documentId, float score) {
    }

    private ChunkHits() {
    }

    public static List<Hit> bm25(DocumentIndex index, String text, Collection<Long> collections, int k)
            throws IOException {
        return index.lucene().bm25(text, collections, k).stream()
                .map(h -> new Hit(h.chunkId(), h.documentId(), h.score())).toList();
    }

    public static List<Hit> knn(DocumentIndex index, float[] vector, Collection<Long> collections, int k)
            throws IOException {
        return index.lucene().knn(vector, collections, k).stream()
                .map(h -> new Hit(h.chunkId(), h.documentId(), h.score())).toList();
    }
}
