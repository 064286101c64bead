package dev.enclave.rag.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.enclave.rag.embed.Embedder;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.rag.retrieve.SearchHit;
import dev.enclave.rag.store.DocumentIndex;
import dev.enclave.rag.store.Principal;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Runs a BEIR dataset ({@code corpus.jsonl}, {@code queries.jsonl}, {@code qrels/test.tsv}) through the real
 * ingestion path into a fresh index and scores retrieval with the BEIR metrics: nDCG@10 (graded gains,
 * log2 discount, as trec_eval) and Recall@100, documents ranked by their best chunk.
 */
public final class BeirEvaluation {

    public record Result(int passages, int chunks, int queries, double ingestSeconds, double ingestPassagesPerSecond,
                         Map<String, Double> ndcgAt10, Map<String, Double> recallAt100, double queryP50Ms,
                         double queryP99Ms) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int BATCH = 64;

    private final Path dataset;
    private final Consumer<String> log;
    private int chunkTokens = DocumentIndex.DEFAULT_CHUNK_TOKENS;

    public BeirEvaluation(Path dataset, Consumer<String> log) {
        this.dataset = dataset;
        this.log = log;
    }

    /** Largest chunk in embedder tokens (0: the embedder's limit). */
    public BeirEvaluation chunkTokens(int tokens) {
        this.chunkTokens = tokens;
        return this;
    }

    public Result run(Path indexDir, Embedder embedder) throws Exception {
        return run(indexDir, embedder, "test", 1.0, 1.0);
    }

    /**
     * @param split       qrels file to score against ({@code test}, or {@code train} when tuning)
     * @param bm25Weight  weight of the BM25 side in the rank fusion
     * @param vectorWeight weight of the vector side
     * An index directory that already holds the corpus is reused (ingestion figures are then zero).
     */
    public Result run(Path indexDir, Embedder embedder, String split, double bm25Weight, double vectorWeight)
            throws Exception {
        Map<String, Map<String, Integer>> qrels = qrels(dataset.resolve("qrels").resolve(split + ".tsv"));
        Map<String, String> queries = new LinkedHashMap<>();
        for (JsonNode q : jsonl(dataset.resolve("queries.jsonl"))) {
            String id = q.get("_id").asText();
            if (qrels.containsKey(id)) queries.put(id, q.get("text").asText());
        }
        try (DocumentIndex index = DocumentIndex.open(indexDir, embedder, new dev.enclave.rag.extract.DocumentExtractor(), chunkTokens)) {
            boolean reuse = index.catalog().collection("beir").isPresent();
            if (!reuse) index.createCollection("beir", "BEIR evaluation corpus", List.of(), List.of());
            long t0 = System.nanoTime();
            int passages = 0;
            List<DocumentIndex.Source> batch = new ArrayList<>();
            // each batch is prepared (its embeddings started) before the one before it is stored, as a crawl does
            try (DocumentIndex.BatchPipeline pipeline = index.pipeline("beir", null)) {
                if (!reuse) try (BufferedReader r = Files.newBufferedReader(dataset.resolve("corpus.jsonl"), StandardCharsets.UTF_8)) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        if (line.isBlank()) continue;
                        JsonNode d = JSON.readTree(line);
                        String title = d.path("title").asText("");
                        String text = d.path("text").asText("");
                        // the title becomes the heading, embedded and indexed with every chunk of the passage
                        String body = title.isBlank() ? text : "# " + title + "\n\n" + text;
                        batch.add(new DocumentIndex.Source(d.get("_id").asText() + ".md",
                                body.getBytes(StandardCharsets.UTF_8), 0, "{}"));
                        passages++;
                        if (batch.size() == BATCH) {
                            pipeline.submit(batch);
                            batch = new ArrayList<>();
                            if (passages % (BATCH * 16) == 0) {
                                double s = (System.nanoTime() - t0) / 1e9;
                                log.accept(String.format("ingested %d passages (%.1f/s)", passages, passages / s));
                            }
                        }
                    }
                }
                if (!batch.isEmpty()) pipeline.submit(batch);
                pipeline.flush();
            }
            double ingestSeconds = (System.nanoTime() - t0) / 1e9;
            int chunks = (int) index.catalog().count("chunks");
            log.accept(String.format("ingested %d passages as %d chunks in %.1f s", passages, chunks, ingestSeconds));

            HybridRetriever retriever = new HybridRetriever(index, bm25Weight, vectorWeight, HybridRetriever.Fusion.SCORE);
            HybridRetriever rrf = new HybridRetriever(index, bm25Weight, vectorWeight, HybridRetriever.Fusion.RRF);
            Map<String, Double> ndcg = new LinkedHashMap<>();
            Map<String, Double> recall = new LinkedHashMap<>();
            double[] latencies = null;
            // hybrid_rrf: the same two sides fused by reciprocal rank, for comparison with the default fusion
            for (String key : new String[] {"bm25", "vector", "hybrid", "hybrid_rrf"}) {
                HybridRetriever.Mode mode = switch (key) {
                    case "bm25" -> HybridRetriever.Mode.BM25;
                    case "vector" -> HybridRetriever.Mode.VECTOR;
                    default -> HybridRetriever.Mode.HYBRID;
                };
                HybridRetriever using = key.equals("hybrid_rrf") ? rrf : retriever;
                double sumNdcg = 0;
                double sumRecall = 0;
                double[] lat = new double[queries.size()];
                int qi = 0;
                for (Map.Entry<String, String> q : queries.entrySet()) {
                    long s = System.nanoTime();
                    List<SearchHit> hits = using.search(Principal.SYSTEM,
                            new HybridRetriever.Query(q.getValue(), List.of("beir"), 300, mode), 300);
                    lat[qi++] = (System.nanoTime() - s) / 1e6;
                    List<String> ranking = documentRanking(hits);
                    Map<String, Integer> rel = qrels.get(q.getKey());
                    sumNdcg += ndcgAt(ranking, rel, 10);
                    sumRecall += recallAt(ranking, rel, 100);
                }
                ndcg.put(key, sumNdcg / queries.size());
                recall.put(key, sumRecall / queries.size());
                log.accept(String.format("%-10s nDCG@10 %.4f  Recall@100 %.4f", key, ndcg.get(key), recall.get(key)));
                if (key.equals("hybrid")) latencies = lat;
            }
            Arrays.sort(latencies);
            return new Result(passages, chunks, queries.size(), ingestSeconds, reuse ? 0 : passages / ingestSeconds, ndcg, recall,
                    percentile(latencies, 0.50), percentile(latencies, 0.99));
        }
    }

    /** Documents in the order of their best chunk. */
    static List<String> documentRanking(List<SearchHit> hits) {
        LinkedHashSet<String> docs = new LinkedHashSet<>();
        for (SearchHit h : hits) {
            String s = h.source();
            docs.add(s.endsWith(".md") ? s.substring(0, s.length() - 3) : s);
        }
        return new ArrayList<>(docs);
    }

    static double ndcgAt(List<String> ranking, Map<String, Integer> rel, int k) {
        double dcg = 0;
        for (int i = 0; i < Math.min(k, ranking.size()); i++) {
            int g = rel.getOrDefault(ranking.get(i), 0);
            if (g > 0) dcg += g / log2(i + 2);
        }
        int[] ideal = rel.values().stream().filter(g -> g > 0).mapToInt(Integer::intValue).sorted().toArray();
        double idcg = 0;
        for (int i = 0; i < Math.min(k, ideal.length); i++) idcg += ideal[ideal.length - 1 - i] / log2(i + 2);
        return idcg == 0 ? 0 : dcg / idcg;
    }

    static double recallAt(List<String> ranking, Map<String, Integer> rel, int k) {
        long relevant = rel.values().stream().filter(g -> g > 0).count();
        if (relevant == 0) return 0;
        int found = 0;
        for (int i = 0; i < Math.min(k, ranking.size()); i++) if (rel.getOrDefault(ranking.get(i), 0) > 0) found++;
        return found / (double) relevant;
    }

    private static double log2(double x) {
        return Math.log(x) / Math.log(2);
    }

    static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) return 0;
        int i = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    static Map<String, Map<String, Integer>> qrels(Path tsv) throws IOException {
        Map<String, Map<String, Integer>> out = new HashMap<>();
        List<String> lines = Files.readAllLines(tsv, StandardCharsets.UTF_8);
        for (String line : lines) {
            String[] f = line.split("\t");
            if (f.length < 3 || f[0].equals("query-id")) continue;
            out.computeIfAbsent(f[0], x -> new HashMap<>()).put(f[1], Integer.parseInt(f[2].trim()));
        }
        return out;
    }

    private static List<JsonNode> jsonl(Path file) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (!line.isBlank()) out.add(JSON.readTree(line));
        }
        return out;
    }
}
