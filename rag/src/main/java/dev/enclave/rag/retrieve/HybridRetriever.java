package dev.enclave.rag.retrieve;

import dev.enclave.rag.store.Catalog;
import dev.enclave.rag.store.DocumentIndex;
import dev.enclave.rag.store.Principal;

import java.io.IOException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hybrid retrieval: BM25 (EnglishAnalyzer) and HNSW vector search over the chunks of the collections the
 * principal may read, fused by reciprocal rank (k = 60) with a weight per side. Access rules are applied
 * before searching, so an unreadable collection contributes nothing, not even to scores.
 */
public final class HybridRetriever {

    public enum Mode { BM25, VECTOR, HYBRID }

    public record Query(String text, List<String> collections, int k, Mode mode) {
        public Query {
            if (text == null || text.isBlank()) throw new IllegalArgumentException("query text is empty");
            if (k < 1 || k > 1000) throw new IllegalArgumentException("k must be in 1..1000");
        }
    }

    /** Candidates taken from each side before fusion. */
    private static final int DEPTH = 100;
    private static final double RRF_K = 60;

    private final DocumentIndex index;
    private final double bm25Weight;
    private final double vectorWeight;

    public HybridRetriever(DocumentIndex index) {
        this(index, 1.0, 1.0);
    }

    public HybridRetriever(DocumentIndex index, double bm25Weight, double vectorWeight) {
        this.index = index;
        this.bm25Weight = bm25Weight;
        this.vectorWeight = vectorWeight;
    }

    /** Collections {@code principal} may read among {@code names} (all readable ones when names is empty). */
    public Map<Long, String> readable(Principal principal, List<String> names) throws SQLException {
        Map<Long, String> out = new LinkedHashMap<>();
        Catalog catalog = index.catalog();
        if (names == null || names.isEmpty()) {
            for (Catalog.CollectionRow c : catalog.collections()) if (c.readableBy(principal)) out.put(c.id(), c.name());
            return out;
        }
        for (String n : names) {
            Catalog.CollectionRow c = catalog.collection(n)
                    .orElseThrow(() -> new IllegalArgumentException("no collection named '" + n + "'"));
            if (!c.readableBy(principal)) throw new AccessDeniedException(principal.user(), n);
            out.put(c.id(), c.name());
        }
        return out;
    }

    public List<SearchHit> search(Principal principal, Query q) throws SQLException, IOException {
        return search(principal, q, DEPTH);
    }

    /** @param depth candidates taken from each side before fusion */
    public List<SearchHit> search(Principal principal, Query q, int depth) throws SQLException, IOException {
        Map<Long, String> cols = readable(principal, q.collections());
        if (cols.isEmpty()) return List.of();
        return fuse(q, cols, depth);
    }

    private List<SearchHit> fuse(Query q, Map<Long, String> cols, int depth) throws SQLException, IOException {
        Collection<Long> ids = cols.keySet();
        int want = Math.max(depth, q.k());
        List<dev.enclave.rag.store.ChunkHits.Hit> bm25 = q.mode() == Mode.VECTOR ? List.of()
                : dev.enclave.rag.store.ChunkHits.bm25(index, q.text(), ids, want);
        List<dev.enclave.rag.store.ChunkHits.Hit> knn = q.mode() == Mode.BM25 ? List.of()
                : dev.enclave.rag.store.ChunkHits.knn(index, index.embedder().embedQuery(q.text()), ids, want);
        Map<Long, double[]> fused = new HashMap<>(); // chunk -> {score, bm25Rank, vectorRank, docId}
        for (int r = 0; r < bm25.size(); r++) {
            var h = bm25.get(r);
            double[] f = fused.computeIfAbsent(h.chunkId(), x -> new double[] {0, 0, 0, h.documentId()});
            f[0] += q.mode() == Mode.BM25 ? h.score() : bm25Weight / (RRF_K + r + 1);
            f[1] = r + 1;
        }
        for (int r = 0; r < knn.size(); r++) {
            var h = knn.get(r);
            double[] f = fused.computeIfAbsent(h.chunkId(), x -> new double[] {0, 0, 0, h.documentId()});
            f[0] += q.mode() == Mode.VECTOR ? h.score() : vectorWeight / (RRF_K + r + 1);
            f[2] = r + 1;
        }
        List<Map.Entry<Long, double[]>> ranked = new ArrayList<>(fused.entrySet());
        ranked.sort(Comparator.comparingDouble((Map.Entry<Long, double[]> e) -> -e.getValue()[0])
                .thenComparingLong(Map.Entry::getKey));
        List<Map.Entry<Long, double[]>> top = ranked.subList(0, Math.min(q.k(), ranked.size()));
        Map<Long, Catalog.ChunkRow> rows = index.catalog().chunks(top.stream().map(Map.Entry::getKey).toList());
        Map<Long, Catalog.DocumentRow> docs = new HashMap<>();
        List<SearchHit> out = new ArrayList<>(top.size());
        for (Map.Entry<Long, double[]> e : top) {
            Catalog.ChunkRow c = rows.get(e.getKey());
            if (c == null) continue; // deleted between search and fetch
            Catalog.DocumentRow d = docs.computeIfAbsent(c.documentId(), id -> {
                try {
                    return index.catalog().document(id).orElse(null);
                } catch (SQLException ex) {
                    throw new IllegalStateException(ex);
                }
            });
            if (d == null) continue;
            double[] f = e.getValue();
            out.add(new SearchHit(c.id(), d.id(), cols.get(d.collectionId()), d.source(), d.title(), c.pageStart(),
                    c.pageEnd(), c.charStart(), c.charEnd(), c.heading(), c.text(), f[0], (int) f[1], (int) f[2]));
        }
        return out;
    }

    /** Thrown when a principal names a collection it may not read. */
    public static final class AccessDeniedException extends RuntimeException {
        public AccessDeniedException(String user, String collection) {
            super("user '" + user + "' may not read collection '" + collection + "'");
        }
    }
}
