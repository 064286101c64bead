package dev.enclave.rag.eval;

import dev.enclave.rag.embed.Embedder;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.rag.store.Catalog;
import dev.enclave.rag.store.DocumentIndex;
import dev.enclave.rag.store.Principal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Query latency at scale without a million real documents: a synthetic corpus of N chunks (pseudo-words drawn from a
 * Zipf distribution, as natural text is, and random unit vectors standing in for embeddings) is written through the
 * same catalog and Lucene index the appliance uses; then real queries (real text, embedded by the real embedder)
 * run hybrid retrieval against it. Only the corpus is synthetic; the code path is the production one.
 */
public final class SyntheticScale {

    public record Result(int chunks, double buildSeconds, long bytesOnDisk, int queries, double p50Ms, double p99Ms) {
    }

    private static final int CHUNKS_PER_DOC = 10;
    private static final int VOCABULARY = 50_000;

    private final Consumer<String> log;

    public SyntheticScale(Consumer<String> log) {
        this.log = log;
    }

    public Result run(Path dir, Embedder embedder, int chunks, int queries, long seed) throws Exception {
        String[] words = vocabulary(seed);
        double[] zipf = zipfCdf(VOCABULARY, 1.07);
        SplittableRandom r = new SplittableRandom(seed);
        long t0 = System.nanoTime();
        try (DocumentIndex index = DocumentIndex.open(dir, embedder)) {
            if (index.catalog().collection("synthetic").isEmpty()) {
                index.createCollection("synthetic", "synthetic scale corpus", List.of(), List.of());
                long col = index.collection("synthetic").id();
                int docs = (chunks + CHUNKS_PER_DOC - 1) / CHUNKS_PER_DOC;
                List<Long> pending = new ArrayList<>();
                for (int d = 0; d < docs; d++) {
                    List<Catalog.ChunkRow> rows = new ArrayList<>(CHUNKS_PER_DOC);
                    for (int c = 0; c < CHUNKS_PER_DOC && d * CHUNKS_PER_DOC + c < chunks; c++) {
                        String text = sentence(words, zipf, r, 120);
                        rows.add(new Catalog.ChunkRow(0, 0, c, 1, 1, c * 800, c * 800 + text.length(), "", text,
                                unitVector(r, embedder.dimension())));
                    }
                    long id = index.catalog().putPending(col, "synthetic/" + d + ".txt", "synthetic " + d, "text/plain",
                            0, 0, Long.toHexString(r.nextLong()), "{}", List.of(new int[] {1, 0, 8000}), rows);
                    pending.add(id);
                    if (pending.size() == 1000) {
                        flush(index, pending);
                        if ((d + 1) % 10_000 == 0) {
                            log.accept(String.format("%d chunks written (%.0f s)", (d + 1) * CHUNKS_PER_DOC,
                                    (System.nanoTime() - t0) / 1e9));
                        }
                    }
                }
                flush(index, pending);
            }
            double build = (System.nanoTime() - t0) / 1e9;
            long bytes = size(dir);
            log.accept(String.format("index: %d chunks, %.1f GiB on disk, built in %.0f s", chunks, bytes / 1073741824.0, build));
            HybridRetriever retriever = new HybridRetriever(index);
            double[] lat = new double[queries];
            for (int i = -10; i < queries; i++) { // 10 warm-up queries
                String q = sentence(words, zipf, r, 4 + r.nextInt(8));
                long s = System.nanoTime();
                var hits = retriever.search(Principal.SYSTEM, new HybridRetriever.Query(q, List.of("synthetic"), 5,
                        HybridRetriever.Mode.HYBRID));
                if (i >= 0) lat[i] = (System.nanoTime() - s) / 1e6;
                if (hits.isEmpty()) throw new IllegalStateException("no hits for '" + q + "'");
            }
            Arrays.sort(lat);
            Result result = new Result(chunks, build, bytes, queries, BeirEvaluation.percentile(lat, 0.5), BeirEvaluation.percentile(lat, 0.99));
            // reported before closing: closing waits for Lucene's background merges, which can take long on a fresh index
            log.accept(String.format("hybrid query latency: p50 %.1f ms, p99 %.1f ms over %d queries", result.p50Ms(), result.p99Ms(), queries));
            return result;
        }
    }

    private static void flush(DocumentIndex index, List<Long> pending) throws Exception {
        if (pending.isEmpty()) return;
        // the index's own recovery path turns pending catalog rows into Lucene documents and commits once
        index.recoverPending();
        pending.clear();
    }

    private static String sentence(String[] words, double[] cdf, SplittableRandom r, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            int w = Arrays.binarySearch(cdf, r.nextDouble());
            if (w < 0) w = -w - 1;
            if (i > 0) sb.append(' ');
            sb.append(words[Math.min(w, words.length - 1)]);
        }
        return sb.toString();
    }

    private static float[] unitVector(SplittableRandom r, int dim) {
        float[] v = new float[dim];
        double s = 0;
        for (int i = 0; i < dim; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1);
            s += v[i] * v[i];
        }
        float inv = (float) (1 / Math.sqrt(s));
        for (int i = 0; i < dim; i++) v[i] *= inv;
        return v;
    }

    private static String[] vocabulary(long seed) {
        SplittableRandom r = new SplittableRandom(seed ^ 0x5eed);
        String consonants = "bcdfghklmnprstvz", vowels = "aeiou";
        String[] w = new String[VOCABULARY];
        for (int i = 0; i < w.length; i++) {
            StringBuilder sb = new StringBuilder();
            int syllables = 1 + r.nextInt(4);
            for (int s = 0; s < syllables; s++) {
                sb.append(consonants.charAt(r.nextInt(consonants.length()))).append(vowels.charAt(r.nextInt(vowels.length())));
            }
            w[i] = sb.append(i % 7 == 0 ? "n" : "").toString();
        }
        return w;
    }

    private static double[] zipfCdf(int n, double s) {
        double[] cdf = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) sum += 1 / Math.pow(i + 1, s);
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += 1 / Math.pow(i + 1, s) / sum;
            cdf[i] = acc;
        }
        return cdf;
    }

    private static long size(Path dir) throws Exception {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }
}
