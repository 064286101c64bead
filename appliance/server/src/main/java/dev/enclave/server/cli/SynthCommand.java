package dev.enclave.server.cli;

import dev.enclave.runtime.synth.EmbeddedModel;
import dev.enclave.runtime.synth.ModelShape;
import dev.enclave.runtime.synth.SyntheticModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code enclave synth}: a random-weight GGUF of a real model's shape, for benchmarks without downloads. */
@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write a random-weight GGUF model of a real shape and size (for benchmarks; not a trained model), or with --embed a trained small model inside that shape.")
public class SynthCommand implements Callable<Integer> {

    @Option(names = "--shape", required = true, description = "llama-3.2-1b, llama-3.2-3b, qwen2.5-0.5b or qwen2.5-1.5b.")
    String shape;

    @Option(names = "--type", required = true, description = "F16, Q8_0, Q4_0 or Q4_K_M.")
    String type;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the GGUF file.")
    Path out;

    @Option(names = "--vocab", paramLabel = "FILE", description = "Take the tokenizer from this GGUF (e.g. a llama.cpp vocab file); default: a synthesized BPE vocabulary of the real size.")
    Path vocab;

    @Option(names = "--embed", paramLabel = "FILE", description = "Instead of random weights, write this trained small llama model inside the shape (zeros elsewhere; its own vocabulary): it writes what the small model writes at the shape's cost, for speculative-decoding and serving benchmarks.")
    Path embed;

    @Option(names = "--seed", defaultValue = "1", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
        ModelShape s;
        SyntheticModel.FileType t;
        try {
            s = ModelShape.byId(shape);
            t = SyntheticModel.FileType.parse(type);
        } catch (IllegalArgumentException e) {
            System.err.println("enclave: " + e.getMessage());
            return 2;
        }
        if (vocab != null && !Files.isRegularFile(vocab)) {
            System.err.println("enclave: vocabulary file not found: " + vocab);
            return 2;
        }
        if (embed != null && (vocab != null || !Files.isRegularFile(embed))) {
            System.err.println("enclave: " + (vocab != null ? "--embed brings its own vocabulary; drop --vocab" : "model file not found: " + embed));
            return 2;
        }
        long t0 = System.nanoTime();
        Path tmp = out.resolveSibling(out.getFileName() + ".partial");
        try {
            if (embed != null) new EmbeddedModel(s, t).write(embed, tmp);
            else new SyntheticModel(s, t, seed).write(tmp, vocab);
        } catch (IllegalArgumentException | dev.enclave.runtime.ModelFormatException e) {
            Files.deleteIfExists(tmp);
            System.err.println("enclave: " + e.getMessage());
            return 2;
        }
        Files.move(tmp, out, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        System.err.printf("[enclave] wrote %s: %s %s%s, %.1f MiB in %.1f s%n", out, s.id, t,
                embed != null ? " holding " + embed.getFileName() : String.format(", %.2f B parameters", s.parameters() / 1e9), Files.size(out) / 1048576.0, (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
