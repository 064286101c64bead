package dev.enclave.benchmarks;

import dev.enclave.rag.embed.EmbeddingModel;
import dev.enclave.rag.embed.OnnxEmbedder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What bounds RAG ingestion: the bundled embedder's throughput in tokens per second (the "tokens" counter), on
 * English-like chunks of about {@code tokens} tokens, with {@code threads} inference threads (one input per run,
 * as ingestion runs them). SciFact's 5,183 passages are ~2.1 M tokens as chunks, so tokens/s / 410 is the
 * ceiling on passages/s.
 *
 * <pre>
 * ./mvnw -Pjmh -q package -pl appliance/benchmarks -am -DskipTests
 * java --add-modules jdk.incubator.vector -jar appliance/benchmarks/target/benchmarks.jar EmbedderBenchmark
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class EmbedderBenchmark {

    @Param({"minilm", "bge"})
    public String embedder;

    @Param({"2"})
    public int threads;

    @Param({"160"})
    public int tokens;

    private OnnxEmbedder model;
    private List<String> batch;
    private long batchTokens;
    private Path nativeDir;

    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Tokens {
        /** Reported by JMH as a rate: input tokens embedded per second. */
        public long tokens;

        @Setup(Level.Iteration)
        public void clear() {
            tokens = 0;
        }
    }

    @Setup
    public void setUp() throws Exception {
        nativeDir = Files.createTempDirectory("enclave-bench-native");
        model = new OnnxEmbedder(EmbeddingModel.named(embedder), nativeDir, threads);
        String[] words = ("the of and to in a is that for with as was on by it are this be from at or an which were "
                + "patients cells protein expression study results treatment clinical gene cancer increased levels "
                + "associated risk disease analysis response cell data effect significant mice role found").split(" ");
        SplittableRandom r = new SplittableRandom(7);
        batch = new ArrayList<>();
        for (int i = 0; i < 8 * threads; i++) {
            StringBuilder text = new StringBuilder();
            while (model.countTokens(text.toString()) < tokens - 2) text.append(words[r.nextInt(words.length)]).append(' ');
            batch.add(text.toString().trim());
            batchTokens += model.countTokens(batch.getLast()) + 2;
        }
    }

    @Benchmark
    public List<float[]> embed(Tokens counter) {
        List<float[]> v = model.embedDocuments(batch);
        counter.tokens += batchTokens;
        return v;
    }

    @TearDown
    public void tearDown() {
        model.close();
    }
}
