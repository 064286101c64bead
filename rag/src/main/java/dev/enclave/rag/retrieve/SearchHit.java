package dev.enclave.rag.retrieve;

/** One retrieved chunk with everything a citation needs. */
public record SearchHit(long chunkId, long documentId, String collection, String source, String title,
                        int pageStart, int pageEnd, int charStart, int charEnd, String heading, String text,
                        double score, int bm25Rank, int vectorRank) {
}
