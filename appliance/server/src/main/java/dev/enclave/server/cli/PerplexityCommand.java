package dev.enclave.server.cli;

import dev.enclave.runtime.eval.LogitComparison;
import dev.enclave.runtime.eval.Perplexity;
import dev.enclave.runtime.model.ModelConfig;
import dev.enclave.runtime.model.TransformerModel;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code enclave perplexity}: a model's perplexity on a text file, chunked as llama.cpp's {@code llama-perplexity}
 * (same file, text and {@code --ctx} give comparable numbers).
 */
@Command(name = "perplexity", mixinStandardHelpOptions = true,
        description = "Perplexity of the model on a text file, chunked as llama.cpp's llama-perplexity: chunks of --ctx tokens,"
                + " each from an empty cache with BOS first, the second half of each scored.")
public class PerplexityCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    RunOptions runOptions;

    @Option(names = "--file", required = true, paramLabel = "TEXT", description = "UTF-8 text file to score.")
    Path file;

    @Option(names = "--ctx", defaultValue = "512", description = "Tokens per chunk (llama-perplexity's -c; default: ${DEFAULT-VALUE}).")
    int ctx;

    @Option(names = "--batch", defaultValue = "512", description = "Tokens per forward step within a chunk (llama-perplexity's -b; default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--chunks", defaultValue = "0", description = "Score at most this many chunks (default: all).")
    int chunks;

    @Option(names = "--save-logits", paramLabel = "FILE", description = "Keep this run's log-probabilities at every scored position as a reference (float32).")
    Path saveLogits;

    @Option(names = "--kl-divergence", paramLabel = "FILE", description = "Compare with a reference saved by --save-logits on the same text and --ctx: mean KLD, its p99/p99.9, same top token %, PPL difference.")
    Path klDivergence;

    @Option(names = "--json", description = "Print one JSON object: ppl, ppl_stderr, tokens, ctx, kv_type, kv_bytes_per_token, ...")
    boolean json;

    @Override
    public Integer call() throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            System.err.println("enclave: " + file + " is not UTF-8 text");
            return 2;
        } catch (IOException e) {
            System.err.println("enclave: cannot read " + file + ": " + e.getMessage());
            return 2;
        }
        try (TransformerModel model = modelOptions.open(runOptions)) {
            ModelConfig c = model.config();
            String kv = model.options().kvType().toString();
            long kvBytesPerToken = c.blockCount() * model.kvBytesPerPosition();
            long t0 = System.nanoTime();
            Perplexity.Result r;
            LogitComparison.Result cmp = null;
            LogitComparison.Writer writer = null;
            LogitComparison.Reader reader = null;
            try {
                if (saveLogits != null) writer = new LogitComparison.Writer(saveLogits, c.vocabularySize(), ctx);
                if (klDivergence != null) reader = new LogitComparison.Reader(klDivergence, c.vocabularySize(), ctx);
                LogitComparison.Writer w = writer;
                LogitComparison.Reader rd = reader;
                Perplexity.Scored scored = w == null && rd == null ? null : (logits, off, n, target) -> {
                    if (w != null) w.position(logits, off, n, target);
                    if (rd != null) rd.position(logits, off, n, target);
                };
                r = Perplexity.run(model, text, ctx, batch, chunks, json ? null
                        : (i, n, ppl) -> System.err.printf(Locale.ROOT, "[%d/%d] %.4f%n", i, n, ppl), scored);
                if (reader != null) cmp = reader.result();
            } catch (IllegalArgumentException e) {
                System.err.println("enclave: " + e.getMessage());
                return 2;
            } catch (IOException e) {
                System.err.println("enclave: " + e.getMessage());
                return 2;
            } finally {
                if (writer != null) writer.close();
                if (reader != null) reader.close();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            String kld = cmp == null ? "" : String.format(Locale.ROOT,
                    ",\"kld_mean\":%.6f,\"kld_p99\":%.6f,\"kld_p999\":%.6f,\"same_top_pct\":%.3f,\"ref_ppl\":%.6f,\"delta_ppl\":%.6f,\"delta_ppl_pct\":%.4f",
                    cmp.kldMean(), cmp.kldP99(), cmp.kldP999(), cmp.sameTopPct(), cmp.referencePpl(), r.ppl() - cmp.referencePpl(),
                    100 * (r.ppl() - cmp.referencePpl()) / cmp.referencePpl());
            if (json) {
                out.printf(Locale.ROOT, "{\"model\":%s,\"file\":%s,\"ppl\":%.6f,\"ppl_stderr\":%.6f,\"nll_mean\":%.6f,\"tokens\":%d,"
                                + "\"text_tokens\":%d,\"chunks\":%d,\"ctx\":%d,\"kv_type\":%s,\"kv_bytes_per_token\":%d,\"seconds\":%.2f%s}%n",
                        Json.string(model.name()), Json.string(file.getFileName().toString()), r.ppl(), r.pplStderr(), r.nllMean(),
                        r.tokens(), r.textTokens(), r.chunks(), r.ctx(), Json.string(kv), kvBytesPerToken, seconds, kld);
            } else {
                out.printf(Locale.ROOT, "Final estimate: PPL = %.4f +/- %.5f (%d tokens scored in %d chunks of %d; KV %s, %d bytes per token; %.1f s)%n",
                        r.ppl(), r.pplStderr(), r.tokens(), r.chunks(), r.ctx(), kv, kvBytesPerToken, seconds);
                if (cmp != null) {
                    out.printf(Locale.ROOT, "KL divergence from the reference: mean %.6f, p99 %.6f, p99.9 %.6f; same top token %.2f%%; "
                                    + "PPL %.4f vs %.4f (%+.3f%%)%n", cmp.kldMean(), cmp.kldP99(), cmp.kldP999(), cmp.sameTopPct(),
                            r.ppl(), cmp.referencePpl(), 100 * (r.ppl() - cmp.referencePpl()) / cmp.referencePpl());
                }
            }
        }
        return 0;
    }
}
