package dev.enclave.rag.eval;

import dev.enclave.rag.TestEmbedder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class BeirEvaluationTest {

    @TempDir
    Path tmp;

    @Test
    void metricsMatchHandComputedValues() {
        Map<String, Integer> rel = Map.of("d1", 1, "d3", 2);
        // ranking d3, d2, d1: DCG = 2/log2(2) + 1/log2(4) = 2.5; IDCG = 2 + 1/log2(3)
        double expected = 2.5 / (2 + 1 / (Math.log(3) / Math.log(2)));
        assertEquals(expected, BeirEvaluation.ndcgAt(List.of("d3", "d2", "d1"), rel, 10), 1e-12);
        assertEquals(1.0, BeirEvaluation.ndcgAt(List.of("d3", "d1"), rel, 10), 1e-12);
        assertEquals(0.0, BeirEvaluation.ndcgAt(List.of("x", "y"), rel, 10), 1e-12);
        assertEquals(0.5, BeirEvaluation.recallAt(List.of("d1", "x"), rel, 100), 1e-12);
        assertEquals(0.0, BeirEvaluation.recallAt(List.of("x", "d1"), rel, 1), 1e-12);
        assertEquals(2.0, BeirEvaluation.percentile(new double[] {1, 2, 3, 4}, 0.5), 0); // nearest rank
        assertEquals(4.0, BeirEvaluation.percentile(new double[] {1, 2, 3, 4}, 0.99), 0);
    }

    @Test
    void tinyBeirSetRunsThroughTheRealPipeline() throws Exception {
        Path ds = Files.createDirectories(tmp.resolve("tiny"));
        Files.writeString(ds.resolve("corpus.jsonl"), String.join("\n",
                "{\"_id\": \"d1\", \"title\": \"Insulin\", \"text\": \"Insulin lowers blood glucose by promoting uptake into cells.\"}",
                "{\"_id\": \"d2\", \"title\": \"Aspirin\", \"text\": \"Aspirin inhibits platelet aggregation and reduces fever.\"}",
                "{\"_id\": \"d3\", \"title\": \"Vitamin D\", \"text\": \"Vitamin D deficiency is linked to weak bones and rickets.\"}",
                "{\"_id\": \"d4\", \"title\": \"Malaria\", \"text\": \"Malaria is transmitted by Anopheles mosquitoes.\"}",
                "{\"_id\": \"d5\", \"title\": \"Statins\", \"text\": \"Statins lower LDL cholesterol in the blood.\"}"));
        Files.writeString(ds.resolve("queries.jsonl"), String.join("\n",
                "{\"_id\": \"q1\", \"text\": \"what hormone reduces blood sugar\"}",
                "{\"_id\": \"q2\", \"text\": \"which insect spreads malaria\"}",
                "{\"_id\": \"q3\", \"text\": \"drug against platelet aggregation\"}",
                "{\"_id\": \"q9\", \"text\": \"a query without judgements is ignored\"}"));
        Files.createDirectories(ds.resolve("qrels"));
        Files.writeString(ds.resolve("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\nq3\td2\t1\n");
        BeirEvaluation.Result r = new BeirEvaluation(ds, s -> { }).run(tmp.resolve("index"), TestEmbedder.get());
        assertEquals(5, r.passages());
        assertEquals(3, r.queries());
        assertTrue(r.ndcgAt10().get("hybrid") > 0.9, r.toString());
        assertEquals(1.0, r.recallAt100().get("hybrid"), 1e-9);
        assertTrue(r.queryP50Ms() > 0 && r.queryP99Ms() >= r.queryP50Ms());
        assertTrue(r.ingestPassagesPerSecond() > 0);
    }
}
