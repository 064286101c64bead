package dev.enclave.server.cli;

import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.backend.KvCode;
import dev.enclave.runtime.eval.KvCalibration;
import dev.enclave.runtime.eval.KvCodeCalibration;
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
import dev.enclave.runtime.generate.ContextShift;

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

    @Option(names = "--kv-budget", paramLabel = "BITS",
            description = "Adaptive KV cache: calibrate per-layer key and value types (8, 4, 3, 2 bits) to at most BITS bits per value on "
                    + "average, scales included, then measure with them; prints the plan, which --kv-type and serve --kv-type take.")
    Double kvBudget;

    @Option(names = "--kv-code", paramLabel = "BITS",
            description = "Transform-coded KV cache: calibrate a code of BITS bits per value on average (keys BITS-0.5, values BITS+0.5;"
                    + " or KEYS/VALUES, e.g. 2.1/3.1) on text the model writes itself (or --kv-calibration TEXT), then measure with it;"
                    + " --save-kv-code keeps it for --kv-type tc:FILE.")
    String kvCode;

    @Option(names = "--save-kv-code", paramLabel = "FILE", description = "With --kv-code: write the calibrated code to FILE (for --kv-type tc:FILE, serve's enclave.kv-type).")
    Path saveKvCode;

    @Option(names = "--kv-calibration", paramLabel = "TEXT",
            description = "Text to calibrate --kv-budget on (default: the scored text itself) or --kv-code on (default: 64 sequences the model writes).")
    Path kvCalibration;

    @Option(names = "--calibration-chunks", defaultValue = "0",
            description = "Chunks of the calibration text (or sequences the model writes, of --ctx tokens) used (default: 4 for --kv-budget, 64 for --kv-code).")
    int calibrationChunks;

    @Option(names = "--kv-per-head", description = "With --kv-budget: choose a format for every KV head of every layer (written q4r|q2r), not per layer.")
    boolean kvPerHead;

    @Option(names = "--save-logits", paramLabel = "FILE", description = "Keep this run's log-probabilities at every scored position as a reference (float32).")
    Path saveLogits;

    @Option(names = "--kl-divergence", paramLabel = "FILE", description = "Compare with a reference saved by --save-logits on the same text and --ctx: mean KLD, its p99/p99.9, same top token %%, PPL difference.")
    Path klDivergence;

    @Option(names = "--json", description = "Print one JSON object: ppl, ppl_stderr, tokens, ctx, kv_type, kv_bytes_per_token, ...")
    boolean json;

    @Option(names = "--context-shift",
            description = "Instead of chunks: read the whole text as one sequence through --ctx positions, shifting the context"
                    + " each time it fills (as generate --context-shift), and score every token after the first --ctx"
                    + " (how an eviction policy serves a long text; JSON adds context_shifts and eviction).")
    boolean contextShift;

    @Option(names = "--heavy-hitters", description = "With --context-shift: drop the least-attended blocks instead of the older half.")
    boolean heavyHitters;

    @Option(names = "--keep", defaultValue = "4", paramLabel = "N", description = "With --context-shift: tokens at the start every shift keeps (default: ${DEFAULT-VALUE}).")
    int keep;

    @Option(names = "--max-tokens", defaultValue = "0", paramLabel = "N", description = "With --context-shift: read at most the text's first N tokens (default: all).")
    int maxTokens;

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
        String calibrationText = kvCode != null && kvCalibration == null ? null : text;
        if (kvCalibration != null) {
            try {
                calibrationText = Files.readString(kvCalibration, StandardCharsets.UTF_8);
            } catch (IOException e) {
                System.err.println("enclave: cannot read " + kvCalibration + ": " + e.getMessage());
                return 2;
            }
        }
        if (calibrationChunks < 0) {
            System.err.println("enclave: --calibration-chunks must not be negative");
            return 2;
        }
        if (calibrationChunks == 0) calibrationChunks = kvCode != null ? 64 : 4;
        if (kvBudget != null && (kvBudget < 2 || kvBudget > 32)) {
            System.err.println("enclave: --kv-budget must be 2 to 32 bits per value");
            return 2;
        }
        double[] codeBits = null;
        if (kvCode != null) {
            if (kvBudget != null) {
                System.err.println("enclave: --kv-code and --kv-budget are two ways to choose a cache: give one");
                return 2;
            }
            codeBits = parseCodeBits(kvCode);
            if (codeBits == null) {
                System.err.println("enclave: --kv-code takes bits per value, 0.5 to 8 (2.66), or keys/values (2.1/3.1), not '" + kvCode + "'");
                return 2;
            }
        } else if (saveKvCode != null) {
            System.err.println("enclave: --save-kv-code goes with --kv-code");
            return 2;
        }
        if (contextShift && (saveLogits != null || klDivergence != null || kvBudget != null)) {
            System.err.println("enclave: --context-shift scores one streamed sequence: it does not take --save-logits, --kl-divergence or --kv-budget");
            return 2;
        }
        if ((heavyHitters || maxTokens != 0) && !contextShift) {
            System.err.println("enclave: --heavy-hitters and --max-tokens go with --context-shift");
            return 2;
        }
        if (keep < 0 || maxTokens < 0) {
            System.err.println("enclave: --keep and --max-tokens must not be negative");
            return 2;
        }
        try (TransformerModel model = modelOptions.open(runOptions)) {
            ModelConfig c = model.config();
            KvPlan plan = model.options().kvType();
            String calibrated = "";
            if (codeBits != null) {
                KvCode code;
                try {
                    KvCodeCalibration.Progress progress = json ? null : (done, total) -> System.err.printf(Locale.ROOT, "[calibration %d/%d]%n", done, total);
                    String label = saveKvCode != null ? saveKvCode.toString() : "calibrated";
                    code = calibrationText == null
                            ? KvCodeCalibration.selfCalibrated(model, calibrationChunks, ctx, codeBits[0], codeBits[1], kvCode.contains("/"), 1, label, progress)
                            : KvCodeCalibration.textCalibrated(model, calibrationText, ctx, calibrationChunks, codeBits[0], codeBits[1], kvCode.contains("/"), label, progress);
                    if (saveKvCode != null) code.write(saveKvCode);
                } catch (IllegalArgumentException | IOException e) {
                    System.err.println("enclave: KV code calibration: " + e.getMessage());
                    return 2;
                }
                plan = code.plan();
                double[] cb = code.codeBits();
                calibrated = String.format(Locale.ROOT, ",\"kv_code_key_bits\":%.4f,\"kv_code_value_bits\":%.4f,\"calibration\":%s,\"calibration_sequences\":%d",
                        cb[0], cb[1], Json.string(calibrationText == null ? "self" : kvCalibration.getFileName().toString()), calibrationChunks);
                if (!json) System.err.printf(Locale.ROOT, "KV code: %.3f bits per key, %.3f per value (%.3f on average)%s%n", cb[0], cb[1],
                        code.bitsPerValue(), saveKvCode != null ? "; written to " + saveKvCode : "");
            }
            if (contextShift) return streamed(out, model, plan, text);
            if (kvBudget != null) {
                KvCalibration.Result cal;
                try {
                    cal = KvCalibration.choose(model, calibrationText, ctx, calibrationChunks, kvBudget, kvPerHead,
                            json ? null : (done, total) -> System.err.printf(Locale.ROOT, "[calibration %d/%d]%n", done, total));
                } catch (IllegalArgumentException e) {
                    System.err.println("enclave: calibration: " + e.getMessage());
                    return 2;
                }
                plan = cal.plan();
                calibrated = String.format(Locale.ROOT, ",\"kv_budget\":%.3f,\"calibration_runs\":%d", kvBudget, cal.runs());
                if (!json) System.err.printf(Locale.ROOT, "KV plan for %.2f bits per value: %s (%.3f bits)%n", kvBudget, plan, cal.bitsPerValue());
            }
            String kv = plan.toString();
            long kvBytesPerToken = plan.bytesPerPosition(c.blockCount(), c.kvDim(), c.headDim());
            double kvBits = plan.bitsPerValue(c.blockCount(), c.kvDim(), c.headDim());
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
                r = Perplexity.run(model, plan, text, ctx, batch, chunks, json ? null
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
            int window = plan.type(0).window();
            if (window > 0) {
                // the recent window's rows, float32, outside the pool: per sequence
                calibrated += String.format(Locale.ROOT, ",\"kv_window\":%d,\"kv_window_bytes_per_sequence\":%d", window,
                        (long) window * c.kvDim() * 2 * 4 * c.blockCount());
            }
            String kld = cmp == null ? "" : String.format(Locale.ROOT,
                    ",\"kld_mean\":%.6f,\"kld_p99\":%.6f,\"kld_p999\":%.6f,\"same_top_pct\":%.3f,\"ref_ppl\":%.6f,\"delta_ppl\":%.6f,\"delta_ppl_pct\":%.4f",
                    cmp.kldMean(), cmp.kldP99(), cmp.kldP999(), cmp.sameTopPct(), cmp.referencePpl(), r.ppl() - cmp.referencePpl(),
                    100 * (r.ppl() - cmp.referencePpl()) / cmp.referencePpl());
            if (json) {
                out.printf(Locale.ROOT, "{\"model\":%s,\"file\":%s,\"ppl\":%.6f,\"ppl_stderr\":%.6f,\"nll_mean\":%.6f,\"tokens\":%d,"
                                + "\"text_tokens\":%d,\"chunks\":%d,\"ctx\":%d,\"kv_type\":%s,\"kv_bytes_per_token\":%d,\"kv_bits_per_value\":%.4f,\"seconds\":%.2f%s%s}%n",
                        Json.string(model.name()), Json.string(file.getFileName().toString()), r.ppl(), r.pplStderr(), r.nllMean(),
                        r.tokens(), r.textTokens(), r.chunks(), r.ctx(), Json.string(kv), kvBytesPerToken, kvBits, seconds, kld, calibrated);
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

    /** "2.66" (keys 0.5 below, values 0.5 above) or "2.1/3.1"; null when neither. */
    static double[] parseCodeBits(String s) {
        try {
            String[] parts = s.strip().split("/", -1);
            double k, v;
            if (parts.length == 1) {
                double b = Double.parseDouble(parts[0]);
                k = b - 0.5;
                v = b + 0.5;
            } else if (parts.length == 2) {
                k = Double.parseDouble(parts[0]);
                v = Double.parseDouble(parts[1]);
            } else {
                return null;
            }
            if (!(k >= 0.125 && k <= 8 && v >= 0.125 && v <= 8)) return null;
            return new double[] {k, v};
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private int streamed(PrintStream out, TransformerModel model, KvPlan plan, String text) {
        ModelConfig c = model.config();
        ContextShift shift = new ContextShift(keep, heavyHitters);
        long t0 = System.nanoTime();
        Perplexity.Streamed r;
        try {
            r = Perplexity.stream(model, plan, text, ctx, maxTokens, shift, json ? null
                    : (i, n, ppl) -> System.err.printf(Locale.ROOT, "[%d/%d] %.4f%n", i, n, ppl));
        } catch (IllegalArgumentException e) {
            System.err.println("enclave: " + e.getMessage());
            return 2;
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        String eviction = heavyHitters ? "heavy-hitters" : "window";
        String kv = plan.toString();
        long kvBytesPerToken = plan.bytesPerPosition(c.blockCount(), c.kvDim(), c.headDim());
        if (json) {
            out.printf(Locale.ROOT, "{\"model\":%s,\"file\":%s,\"ppl\":%.6f,\"ppl_stderr\":%.6f,\"nll_mean\":%.6f,\"tokens\":%d,"
                            + "\"text_tokens\":%d,\"ctx\":%d,\"kv_type\":%s,\"kv_bytes_per_token\":%d,\"context_shifts\":%d,\"eviction\":%s,\"keep\":%d,\"seconds\":%.2f}%n",
                    Json.string(model.name()), Json.string(file.getFileName().toString()), r.ppl(), r.pplStderr(), r.nllMean(), r.tokens(),
                    r.textTokens(), r.ctx(), Json.string(kv), kvBytesPerToken, r.shifts(), Json.string(eviction), keep, seconds);
        } else {
            out.printf(Locale.ROOT, "Final estimate: PPL = %.4f +/- %.5f (%d tokens scored through a context of %d, %d shifts, %s; KV %s; %.1f s)%n",
                    r.ppl(), r.pplStderr(), r.tokens(), r.ctx(), r.shifts(), eviction, kv, seconds);
        }
        return 0;
    }
}
