package dev.enclave.server.cli;

import dev.enclave.rag.embed.EmbeddingModel;
import dev.enclave.rag.embed.NativeLibraries;
import dev.enclave.rag.embed.OnnxEmbedder;
import dev.enclave.rag.eval.BeirEvaluation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code enclave rag ...}: the document index from the command line. */
@Command(name = "rag", mixinStandardHelpOptions = true, description = "Document index commands.",
        subcommands = {RagCommand.Eval.class, RagCommand.Scale.class})
public class RagCommand implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** {@code enclave rag scale}: hybrid query latency on a synthetic index of N chunks. */
    @Command(name = "scale", mixinStandardHelpOptions = true,
            description = "Build (or reuse) a synthetic index of N chunks (Zipf pseudo-words, random unit vectors) through the real catalog "
                    + "and Lucene index, then time real hybrid queries (real text, real query embeddings): p50/p99 and size on disk.")
    public static class Scale implements Callable<Integer> {
        @Option(names = "--chunks", defaultValue = "1000000") int chunks;
        @Option(names = "--dir", required = true, paramLabel = "DIR", description = "Index directory (reused when it exists).") Path dir;
        @Option(names = "--queries", defaultValue = "200") int queries;
        @Option(names = "--embedder", defaultValue = "minilm") String embedder;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            try (OnnxEmbedder e = new OnnxEmbedder(EmbeddingModel.named(embedder), NativeLibraries.defaultDirectory(),
                    Runtime.getRuntime().availableProcessors())) {
                var r = new dev.enclave.rag.eval.SyntheticScale(json ? System.err::println : System.out::println)
                        .run(dir, e, chunks, queries, 42);
                String out = String.format(Locale.ROOT,
                        "{\"chunks\":%d,\"build_s\":%.1f,\"bytes_on_disk\":%d,\"queries\":%d,\"query_p50_ms\":%.2f,\"query_p99_ms\":%.2f}",
                        r.chunks(), r.buildSeconds(), r.bytesOnDisk(), r.queries(), r.p50Ms(), r.p99Ms());
                System.out.println(json ? out : "hybrid query latency on " + r.chunks() + " chunks: p50 "
                        + String.format(Locale.ROOT, "%.1f ms, p99 %.1f ms; %.2f GiB on disk", r.p50Ms(), r.p99Ms(), r.bytesOnDisk() / 1073741824.0));
            }
            return 0;
        }
    }

    /** {@code enclave rag eval}: BEIR retrieval evaluation through the real ingestion and retrieval path. */
    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Ingest a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv) into a fresh index and "
                    + "print nDCG@10, Recall@100 (BM25, vector, hybrid), ingestion passages/s and query latency.")
    public static class Eval implements Callable<Integer> {

        @Option(names = "--dataset", required = true, paramLabel = "DIR", description = "BEIR dataset directory.")
        Path dataset;

        @Option(names = "--embedder", defaultValue = "minilm",
                description = "Embedding model: minilm (all-MiniLM-L6-v2, int8) or bge (bge-small-en-v1.5, int8). Default: ${DEFAULT-VALUE}.")
        String embedder;

        @Option(names = {"-t", "--threads"}, description = "Embedding threads (default: available processors).")
        Integer threads;

        @Option(names = "--chunk-tokens", defaultValue = "254", description = "Largest chunk in embedder tokens, 0 for the embedder's input limit (default: ${DEFAULT-VALUE}). Above that limit a chunk is embedded from its first tokens (truncation at the model's limit) while BM25 indexes all of it: 1022 gives BEIR's whole-passage protocol.")
        int chunkTokens;

        @Option(names = "--index-dir", paramLabel = "DIR", description = "Where to build the index (default: a temporary directory, deleted after).")
        Path indexDir;

        @Option(names = "--native-dir", paramLabel = "DIR", description = "Where native libraries are unpacked (default: $ENCLAVE_NATIVE_DIR or a directory under java.io.tmpdir).")
        Path nativeDir;

        @Option(names = "--json", description = "Print one JSON object.")
        boolean json;

        @Override
        public Integer call() throws Exception {
            for (String f : new String[] {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"}) {
                if (!Files.isRegularFile(dataset.resolve(f))) {
                    System.err.println("enclave: not a BEIR dataset: " + dataset.resolve(f) + " is missing");
                    return 2;
                }
            }
            EmbeddingModel model;
            try {
                model = EmbeddingModel.named(embedder);
            } catch (IllegalArgumentException e) {
                System.err.println("enclave: " + e.getMessage());
                return 2;
            }
            boolean temporary = indexDir == null;
            Path dir = temporary ? Files.createTempDirectory("enclave-beir-") : indexDir;
            if (!temporary && Files.exists(dir) && Files.list(dir).findAny().isPresent()) {
                System.err.println("enclave: --index-dir must be empty or absent: " + dir);
                return 2;
            }
            int n = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
            Path natives = nativeDir != null ? nativeDir : NativeLibraries.defaultDirectory();
            try (OnnxEmbedder e = new OnnxEmbedder(model, natives, n)) {
                BeirEvaluation.Result r = new BeirEvaluation(dataset, json ? s -> System.err.println(s) : System.out::println)
                        .chunkTokens(chunkTokens).run(dir, e);
                if (json) {
                    System.out.println(json(r, model));
                } else {
                    System.out.printf(Locale.ROOT, "%n%s on %s (%d passages, %d chunks, %d queries)%n", model.id,
                            dataset.getFileName(), r.passages(), r.chunks(), r.queries());
                    System.out.printf(Locale.ROOT, "%-8s %9s %11s%n", "", "nDCG@10", "Recall@100");
                    for (String k : r.ndcgAt10().keySet()) {
                        System.out.printf(Locale.ROOT, "%-8s %9.4f %11.4f%n", k, r.ndcgAt10().get(k), r.recallAt100().get(k));
                    }
                    System.out.printf(Locale.ROOT, "ingestion %.1f passages/s; hybrid query p50 %.1f ms, p99 %.1f ms%n",
                            r.ingestPassagesPerSecond(), r.queryP50Ms(), r.queryP99Ms());
                }
            } finally {
                if (temporary) TemporaryFiles.deleteTree(dir);
            }
            return 0;
        }

        static String json(BeirEvaluation.Result r, EmbeddingModel model) {
            StringBuilder sb = new StringBuilder("{");
            sb.append("\"ndcg_at_10\":").append(num(r.ndcgAt10().get("hybrid")));
            sb.append(",\"recall_at_100\":").append(num(r.recallAt100().get("hybrid")));
            sb.append(",\"ingest_passages_per_s\":").append(num(r.ingestPassagesPerSecond()));
            sb.append(",\"query_p50_ms\":").append(num(r.queryP50Ms()));
            sb.append(",\"query_p99_ms\":").append(num(r.queryP99Ms()));
            sb.append(",\"embedder\":").append(Json.string(model.id));
            sb.append(",\"passages\":").append(r.passages());
            sb.append(",\"chunks\":").append(r.chunks());
            sb.append(",\"queries\":").append(r.queries());
            sb.append(",\"by_mode\":{");
            boolean first = true;
            for (Map.Entry<String, Double> e : r.ndcgAt10().entrySet()) {
                if (!first) sb.append(',');
                first = false;
                sb.append(Json.string(e.getKey())).append(":{\"ndcg_at_10\":").append(num(e.getValue()))
                        .append(",\"recall_at_100\":").append(num(r.recallAt100().get(e.getKey()))).append('}');
            }
            return sb.append("}}").toString();
        }

        private static String num(double v) {
            return String.format(Locale.ROOT, "%.4f", v);
        }
    }
}
