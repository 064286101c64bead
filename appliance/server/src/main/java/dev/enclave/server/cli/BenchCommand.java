package dev.enclave.server.cli;

import dev.enclave.runtime.backend.cpu.CpuBackend;
import dev.enclave.runtime.bench.Benchmark;
import dev.enclave.runtime.model.TransformerModel;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code enclave bench}: prompt-processing and generation speed, like llama-bench. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure prompt processing (pp) and token generation (tg) speed of a model, like llama-bench.")
public class BenchCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "GGUF model file.")
    Path model;

    @Option(names = {"-t", "--threads"}, description = "Threads (default: available processors).")
    Integer threads;

    @Option(names = {"-p", "--n-prompt"}, defaultValue = "128", description = "Prompt tokens (default: ${DEFAULT-VALUE}).")
    int prompt;

    @Option(names = {"-n", "--n-gen"}, defaultValue = "64", description = "Generated tokens (default: ${DEFAULT-VALUE}).")
    int gen;

    @Option(names = {"-r", "--repetitions"}, defaultValue = "3", description = "Repetitions (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = {"-d", "--n-depth"}, defaultValue = "0", description = "Tokens already in the KV cache when each test starts, as llama-bench -d (default: ${DEFAULT-VALUE}).")
    int depth;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @picocli.CommandLine.Mixin
    RunOptions runOptions;

    @Override
    public Integer call() throws Exception {
        if (!Files.isRegularFile(model)) {
            System.err.println("enclave: model file not found: " + model);
            return 2;
        }
        int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        if (t < 1 || prompt < 0 || gen < 0 || reps < 1 || depth < 0) {
            System.err.println("enclave: threads and repetitions must be positive, token counts not negative");
            return 2;
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        dev.enclave.runtime.RuntimeOptions options = runOptions.options(1).withThreads(t);
        try (TransformerModel m = TransformerModel.load(model, options)) {
            Benchmark.Result r = new Benchmark(m, CpuBackend.shared(t)).run(prompt, gen, reps, depth);
            dev.enclave.runtime.backend.Placement where = m.placement();
            if (json) {
                StringBuilder layers = new StringBuilder();
                if (where.split()) {
                    layers.append(",\"layers\":{");
                    where.layers().forEach((k, v) -> layers.append(layers.charAt(layers.length() - 1) == '{' ? "" : ",").append(Json.string(k)).append(':').append(v));
                    layers.append('}');
                }
                // the instruction set the native kernels chose (ENCLAVE_CPU_ISA may have lowered it), or "java"
                var natives = CpuBackend.shared(t).nativeKernels();
                boolean java = natives == null || where.backend().equals("cpu-java");
                layers.append(",\"isa\":").append(Json.string(java ? "java" : natives.isa()));
                // whether the prompts' repacked products ran on AMX tiles (ENCLAVE_CPU_AMX=0 turns them off)
                layers.append(",\"amx\":").append(!java && natives.amx());
                out.printf("{\"model\":%s,\"model_bytes\":%d,\"backend\":%s%s,\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"n_depth\":%d,\"kv_type\":%s,\"pp_tok_s\":%.3f,\"pp_stddev\":%.3f,"
                                + "\"tg_tok_s\":%.3f,\"tg_stddev\":%.3f,\"bandwidth_gb_s\":%.2f,\"bytes_per_token\":%d,\"tg_bandwidth_pct\":%.1f}%n",
                        Json.string(m.name()), Files.size(model), Json.string(where.backend()), layers, t, prompt, gen, depth,
                        Json.string(m.options().kvType().toString()), r.ppTokS(), r.ppStd(),
                        r.tgTokS(), r.tgStd(), r.bandwidthGBs(), r.bytesPerToken(), r.tgBandwidthPercent());
            } else {
                out.printf("| model | size | backend | threads | test | t/s | %% of bandwidth limit |%n|---|---|---|---|---|---|---|%n");
                String size = String.format("%.2f GiB", Files.size(model) / 1073741824.0);
                String at = depth > 0 ? " @ d" + depth : "";
                if (prompt > 0) out.printf("| %s | %s | %s | %d | pp%d%s | %.2f ± %.2f | |%n", m.name(), size, where, t, prompt, at, r.ppTokS(), r.ppStd());
                if (gen > 0) out.printf("| %s | %s | %s | %d | tg%d%s | %.2f ± %.2f | %.0f%% of %.1f t/s (%.1f GB/s read) |%n", m.name(), size, where, t, gen, at,
                        r.tgTokS(), r.tgStd(), r.tgBandwidthPercent(), r.bandwidthLimitTokS(), r.bandwidthGBs());
            }
        }
        return 0;
    }
}
