package dev.enclave.rag.retrieve;

import dev.enclave.rag.store.ChunkHits.Hit;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ScoreFusionTest {

    private static Map<Long, double[]> slots(List<Hit> bm25, List<Hit> knn) {
        return HybridRetriever.candidates(bm25, knn);
    }

    private static double[] zScores(double... scores) {
        double mean = 0;
        for (double s : scores) mean += s;
        mean /= scores.length;
        double var = 0;
        for (double s : scores) var += (s - mean) * (s - mean);
        double sd = Math.sqrt(var / scores.length);
        double[] z = new double[scores.length];
        for (int i = 0; i < z.length; i++) z[i] = (scores[i] - mean) / sd;
        return z;
    }

    @Test
    void eachSideBecomesZScoresAndMissingTakesTheSidesLowest() {
        List<Hit> bm25 = List.of(new Hit(1, 1, 12f), new Hit(2, 1, 6f), new Hit(3, 2, 3f));
        List<Hit> knn = List.of(new Hit(4, 3, 0.9f), new Hit(1, 1, 0.7f));
        Map<Long, double[]> fused = slots(bm25, knn);
        HybridRetriever.addNormalized(fused, bm25, 1, 0.5);
        HybridRetriever.addNormalized(fused, knn, 2, 0.5);
        double[] zb = zScores(12, 6, 3);
        double[] zv = zScores(0.9f, 0.7f); // the hits' float scores, as the retriever reads them
        assertEquals(0.5 * zb[0] + 0.5 * zv[1], fused.get(1L)[0], 1e-9);
        assertEquals(0.5 * zb[1] + 0.5 * zv[1], fused.get(2L)[0], 1e-9, "missing from kNN: its lowest z");
        assertEquals(0.5 * zb[2] + 0.5 * zv[1], fused.get(3L)[0], 1e-9);
        assertEquals(0.5 * zb[2] + 0.5 * zv[0], fused.get(4L)[0], 1e-9, "missing from BM25: its lowest z");
    }

    @Test
    void aWideMarginOnOneSideBeatsBeingSecondOnBoth() {
        // chunk 1 is far ahead on BM25 and absent from kNN; chunk 2 is a close second on both. Reciprocal rank
        // puts 2 first (1/62 + 1/62 > 1/61 + 0); scores put 1 first, since its BM25 lead is large and the vector
        // side barely separates its hits.
        List<Hit> bm25 = new ArrayList<>(List.of(new Hit(1, 1, 40f), new Hit(2, 2, 8f)));
        List<Hit> knn = new ArrayList<>(List.of(new Hit(3, 3, 0.81f), new Hit(2, 2, 0.80f)));
        for (int i = 0; i < 20; i++) {
            bm25.add(new Hit(10 + i, 10 + i, 7f - i * 0.1f));
            knn.add(new Hit(40 + i, 40 + i, 0.79f - i * 0.001f));
        }
        Map<Long, double[]> fused = slots(bm25, knn);
        HybridRetriever.addNormalized(fused, bm25, 1, 0.5);
        HybridRetriever.addNormalized(fused, knn, 2, 0.5);
        assertTrue(fused.get(1L)[0] > fused.get(2L)[0], "score fusion keeps the margin");
        double rrf1 = 1 / 61.0;
        double rrf2 = 1 / 62.0 + 1 / 62.0;
        assertTrue(rrf2 > rrf1, "and reciprocal rank would not");
    }

    @Test
    void equalScoresAndEmptySidesStayFinite() {
        List<Hit> flat = List.of(new Hit(1, 1, 2f), new Hit(2, 1, 2f));
        Map<Long, double[]> fused = slots(flat, List.of());
        HybridRetriever.addNormalized(fused, flat, 1, 0.5);
        HybridRetriever.addNormalized(fused, List.of(), 2, 0.5);
        for (double[] f : fused.values()) assertEquals(0.0, f[0], 0.0);
    }

    @Test
    void fusedOrderDoesNotDependOnTheSidesScale() {
        // BM25 scores are unbounded and vector scores live in [0, 1]: rescaling a side must not change the order
        SplittableRandom r = new SplittableRandom(11);
        List<Hit> bm25 = new ArrayList<>();
        List<Hit> bm25Scaled = new ArrayList<>();
        List<Hit> knn = new ArrayList<>();
        float b = 30;
        float v = 0.95f;
        for (int i = 0; i < 150; i++) {
            b -= (float) r.nextDouble(0.3);
            v -= (float) r.nextDouble(0.004);
            bm25.add(new Hit(r.nextInt(200), i, b));
            bm25Scaled.add(new Hit(bm25.getLast().chunkId(), i, b * 8));
            knn.add(new Hit(r.nextInt(200), i, v));
        }
        Map<Long, double[]> a = slots(dedupe(bm25), dedupe(knn));
        Map<Long, double[]> c = slots(dedupe(bm25Scaled), dedupe(knn));
        HybridRetriever.addNormalized(a, dedupe(bm25), 1, 0.5);
        HybridRetriever.addNormalized(a, dedupe(knn), 2, 0.5);
        HybridRetriever.addNormalized(c, dedupe(bm25Scaled), 1, 0.5);
        HybridRetriever.addNormalized(c, dedupe(knn), 2, 0.5);
        for (long id : a.keySet()) assertEquals(a.get(id)[0], c.get(id)[0], 1e-4, "chunk " + id);
    }

    /** A chunk appears once per side, at its best rank, as Lucene returns it. */
    private static List<Hit> dedupe(List<Hit> hits) {
        Map<Long, Hit> first = new java.util.LinkedHashMap<>();
        for (Hit h : hits) first.putIfAbsent(h.chunkId(), h);
        return new ArrayList<>(first.values());
    }
}
