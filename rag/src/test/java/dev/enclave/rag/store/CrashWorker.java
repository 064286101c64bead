package dev.enclave.rag.store;

import dev.enclave.rag.embed.EmbeddingModel;
import dev.enclave.rag.embed.OnnxEmbedder;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The process the crash test kills: opens the index (which recovers), prints READY, then ingests, replaces and
 * deletes documents forever until killed with SIGKILL. Batches overlap as in a crawl: each is prepared (its
 * embeddings running) before the one before it is stored.
 */
public final class CrashWorker {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        long seed = Long.parseLong(args[1]);
        try (OnnxEmbedder e = new OnnxEmbedder(EmbeddingModel.MINILM_L6_Q, Path.of(args[2]), 1);
             DocumentIndex index = DocumentIndex.open(dir, e)) {
            if (index.catalog().collection("c").isEmpty()) index.createCollection("c", "", List.of(), List.of());
            System.out.println("READY");
            System.out.flush();
            Random r = new Random(seed);
            DocumentIndex.BatchPipeline pipeline = index.pipeline("c", null);
            for (int round = 0; ; round++) {
                List<DocumentIndex.Source> batch = new ArrayList<>();
                int n = 1 + r.nextInt(6);
                for (int i = 0; i < n; i++) {
                    int doc = r.nextInt(30);
                    String body = ("Document " + doc + " revision " + r.nextInt(1000) + ". ")
                            .repeat(1 + r.nextInt(40));
                    batch.add(new DocumentIndex.Source("doc" + doc + ".txt", body.getBytes(StandardCharsets.UTF_8),
                            round, "{}"));
                }
                pipeline.submit(batch);
                if (r.nextInt(3) == 0) {
                    var docs = index.catalog().documents(index.collection("c").id());
                    if (!docs.isEmpty()) index.deleteDocument(docs.get(r.nextInt(docs.size())).id());
                }
            }
        }
    }
}
