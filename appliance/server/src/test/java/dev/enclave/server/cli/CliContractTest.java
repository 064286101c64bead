package dev.enclave.server.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The CLI contract others' checks rely on: {@code tokenize --json}, {@code logits --json}, {@code generate}, run
 * in-process on the shared stories260K file and compared with the llama.cpp / float64 references.
 */
public class CliContractTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    record Run(int code, String out, String err) {
    }

    static Run run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = dev.enclave.server.EnclaveMain.run(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    public static Path shared(String file) {
        Path p = Path.of(System.getProperty("enclave.shared.dir", "../../../shared")).resolve("fixtures/models").resolve(file);
        assertTrue(Files.isRegularFile(p), "missing shared fixture " + p);
        return p;
    }

    /**
     * tinystories-hd64 inside the Llama-3.2-1B shape (Q4_0, {@code synth --embed}), written once under target/: a
     * target whose steps are memory-bound, so that a draft model's guesses pay and the engine checks them.
     */
    public static synchronized Path embeddedTarget() throws java.io.IOException {
        Path p = Path.of("target/test-models/hd64-in-llama-3.2-1b-Q4_0.gguf").toAbsolutePath();
        if (!Files.isRegularFile(p)) {
            Files.createDirectories(p.getParent());
            Run synth = run("synth", "--shape", "llama-3.2-1b", "--type", "Q4_0", "--embed", shared("tinystories-hd64-F32.gguf").toString(),
                    "--out", p.toString());
            assertEquals(0, synth.code(), synth.err());
        }
        return p;
    }

    @Test
    void tokenizeJson() throws Exception {
        Run r = run("tokenize", "--model", shared("stories260K.gguf").toString(), "--text", "Once upon a time", "--json");
        assertEquals(0, r.code(), r.err());
        assertEquals("{\"tokens\":[1,403,407,261,378]}", r.out().trim());
        Run bundled = run("tokenize", "--text", "Once upon a time", "--json", "--no-special");
        assertEquals("{\"tokens\":[403,407,261,378]}", bundled.out().trim());
    }

    @Test
    void logitsJsonMatchesFloat64Reference() throws Exception {
        JsonNode ref = JSON.readTree(shared("stories260K-F32.ref.json").toFile());
        Run r = run("logits", "--model", shared("stories260K.gguf").toString(), "--tokens", "1,403,407,261,378", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode logits = JSON.readTree(r.out()).get("last_logits");
        JsonNode expected = ref.get("f64_reference").get("last_logits");
        assertEquals(expected.size(), logits.size());
        for (int i = 0; i < logits.size(); i++) {
            assertEquals(expected.get(i).asDouble(), logits.get(i).asDouble(), 1e-4, "logit " + i);
        }
    }

    @Test
    void generateGreedyMatchesLlamaCpp() throws Exception {
        JsonNode ref = JSON.readTree(shared("stories260K-F32.ref.json").toFile());
        Run r = run("generate", "--model", shared("stories260K.gguf").toString(), "--prompt", "Once upon a time",
                "-n", "32", "--temp", "0", "--ignore-eos", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode out = JSON.readTree(r.out());
        int[] expected = new int[32];
        for (int i = 0; i < 32; i++) expected[i] = ref.get("greedy_tokens").get(i).asInt();
        int[] got = new int[out.get("tokens").size()];
        for (int i = 0; i < got.length; i++) got[i] = out.get("tokens").get(i).asInt();
        assertArrayEquals(expected, got);
        assertEquals(ref.get("greedy_text").asText(), out.get("text").asText());

        Run text = run("generate", "--prompt", "Once upon a time", "-n", "8", "--temp", "0");
        assertEquals(0, text.code());
        assertEquals("Once upon a time, there was a little girl", text.out().trim());
    }

    @Test
    void generateWithADraftModel() throws Exception {
        String target = embeddedTarget().toString();
        Run plain = run("generate", "--model", target, "--prompt", "Once upon a time", "-n", "40", "--temp", "0", "--ignore-eos", "--json");
        Run spec = run("generate", "--model", target, "--prompt", "Once upon a time", "-n", "40", "--temp", "0", "--ignore-eos", "--json",
                "--speculate", "draft", "--draft-model", shared("tinystories-hd64-Q4_0.gguf").toString(), "--draft-max", "4");
        assertEquals(0, spec.code(), spec.err());
        JsonNode a = JSON.readTree(plain.out()), b = JSON.readTree(spec.out());
        assertEquals(a.get("tokens"), b.get("tokens"), "the plain answer");
        assertTrue(b.get("spec_accepted").asInt() > 10 && b.get("spec_steps").asInt() > 0, spec.out());
        Run noDraft = run("generate", "--model", target, "--prompt", "x", "--speculate", "draft");
        assertEquals(2, noDraft.code());
        assertTrue(noDraft.err().contains("--draft-model"), noDraft.err());
        Run otherVocabulary = run("generate", "--model", target, "--prompt", "x", "--speculate", "draft", "--draft-model",
                shared("stories260K.gguf").toString());
        assertEquals(1, otherVocabulary.code());
        assertEquals(1, otherVocabulary.err().strip().lines().count(), otherVocabulary.err());
        assertTrue(otherVocabulary.err().contains("same vocabulary"), otherVocabulary.err());
    }

    @Test
    void generatePastTheContextWithContextShift() throws Exception {
        String model = shared("tinystories-hd64-F32.gguf").toString();
        Run ends = run("generate", "--model", model, "--prompt", "Once upon a time", "-n", "150", "--temp", "0", "--ignore-eos",
                "--ctx", "64", "--json");
        assertEquals(0, ends.code(), ends.err());
        JsonNode e = JSON.readTree(ends.out());
        assertEquals("length", e.get("finish_reason").asText());
        assertTrue(e.get("tokens").size() < 64, ends.out());
        assertEquals(0, e.get("context_shifts").asInt());
        Run goesOn = run("generate", "--model", model, "--prompt", "Once upon a time", "-n", "150", "--temp", "0", "--ignore-eos",
                "--ctx", "64", "--context-shift", "--keep", "4", "--json");
        assertEquals(0, goesOn.code(), goesOn.err());
        JsonNode g = JSON.readTree(goesOn.out());
        assertEquals(150, g.get("tokens").size());
        assertTrue(g.get("context_shifts").asInt() >= 3, goesOn.out());
        Run heavy = run("generate", "--model", model, "--prompt", "Once upon a time", "-n", "150", "--temp", "0", "--ignore-eos",
                "--ctx", "64", "--context-shift", "--heavy-hitters", "--json");
        assertEquals(0, heavy.code(), heavy.err());
        JsonNode h = JSON.readTree(heavy.out());
        assertEquals(150, h.get("tokens").size());
        assertTrue(h.get("context_shifts").asInt() >= 3, heavy.out());
        Run tooShort = run("generate", "--model", model, "--prompt", "Once upon a time, there was a girl", "--ctx", "4");
        assertEquals(2, tooShort.code());
        assertTrue(tooShort.err().contains("--ctx"), tooShort.err());
    }

    @Test
    void clearErrors() throws Exception {
        Run missing = run("generate", "--model", "/nonexistent/model.gguf", "--prompt", "x");
        assertTrue(missing.code() != 0);
        assertTrue(missing.err().contains("model file not found"), missing.err());
        // one line, no stack trace; the trace with --verbose
        assertEquals(1, missing.err().strip().lines().count(), missing.err());
        assertTrue(missing.err().startsWith("enclave: "), missing.err());
        Path notGguf = Files.writeString(Files.createTempFile("not", ".gguf"), "# a README, not a model\n");
        Run bad = run("generate", "--model", notGguf.toString(), "--prompt", "x");
        assertTrue(bad.code() != 0);
        assertEquals(1, bad.err().strip().lines().count(), bad.err());
        assertTrue(bad.err().contains("not a GGUF file"), bad.err());
        Run verbose = run("generate", "--model", notGguf.toString(), "--prompt", "x", "--verbose");
        assertTrue(verbose.err().contains("\tat "), "stack trace with --verbose: " + verbose.err());
        Run badToken = run("logits", "--tokens", "1,99999", "--json");
        assertEquals(2, badToken.code());
        assertTrue(badToken.err().contains("outside the vocabulary"), badToken.err());
        // synth --embed: a model that does not fit the shape, and a missing one, refused in a line; nothing left behind
        Path out = Files.createTempDirectory("synth").resolve("x.gguf");
        Run tooBig = run("synth", "--shape", "qwen2.5-0.5b", "--type", "Q4_0", "--embed", shared("tinystories-hd64-F32.gguf").toString(),
                "--out", out.toString());
        assertEquals(2, tooBig.code());
        assertEquals(1, tooBig.err().strip().lines().count(), tooBig.err());
        assertTrue(tooBig.err().contains("llama"), tooBig.err());
        assertFalse(Files.exists(out) || Files.exists(out.resolveSibling("x.gguf.partial")));
        Run absent = run("synth", "--shape", "llama-3.2-1b", "--type", "Q4_0", "--embed", "/nonexistent.gguf", "--out", out.toString());
        assertEquals(2, absent.code());
        assertTrue(absent.err().contains("model file not found"), absent.err());
        Run help = run("--help");
        assertEquals(0, help.code());
        for (String cmd : new String[] {"serve", "generate", "tokenize", "logits", "synth"}) {
            assertTrue(help.out().contains(cmd), help.out());
            assertEquals(0, run(cmd, "--help").code());
        }
    }

    /** serve says why it cannot start, in one line, before booting anything: a non-GGUF model, a taken port. */
    @Test
    void serveRefusesPlainly() throws Exception {
        Path notGguf = Files.writeString(Files.createTempFile("not", ".gguf"), "# a README, not a model\n");
        Run bad = run("serve", "--model", notGguf.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("not a GGUF model file"), bad.err());
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            Run busy = run("serve", "--port", Integer.toString(taken.getLocalPort()));
            assertEquals(1, busy.code());
            assertTrue(busy.err().contains("cannot listen on 127.0.0.1:" + taken.getLocalPort()), busy.err());
            assertEquals(1, busy.err().strip().lines().count(), busy.err());
        }
    }

    /**
     * {@code --backend}: the chosen backend and the layer split are reported ({@code bench --json}, {@code device doctor
     * --json}); a backend this machine lacks is refused in one line naming those it has.
     */
    @Test
    void backendSelectionIsReportedAndAnAbsentOneRefused() throws Exception {
        Run bench = run("bench", "--model", shared("stories260K.gguf").toString(), "--backend", "cpu", "-p", "8", "-n", "4", "-r", "1", "--json");
        assertEquals(0, bench.code(), bench.err());
        JsonNode b = JSON.readTree(bench.out());
        assertEquals("cpu", b.get("backend").asText());
        assertTrue(b.get("layers") == null, "one backend, no split: " + bench.out());
        assertTrue(java.util.Set.of("java", "baseline", "avx2", "avx512-vnni", "neon", "neon-dotprod", "neon-i8mm").contains(b.get("isa").asText()),
                "the native kernels' instruction set: " + bench.out());
        for (String[] args : new String[][] {{"generate", "--backend", "opencl", "--prompt", "x", "-n", "1"},
                {"logits", "--backend", "npu", "--tokens", "1,2"}, {"serve", "--backend", "opencl", "--port", "0"}}) {
            Run refused = run(args);
            assertTrue(refused.code() != 0, String.join(" ", args));
            assertTrue(refused.err().contains("backend '" + args[2] + "' is not available on this machine (available: cpu"), refused.err());
            assertEquals(1, refused.err().strip().lines().count(), refused.err());
        }
        Run doctor = run("device", "doctor", "--profile", "qcs6490", "--json");
        JsonNode d = JSON.readTree(doctor.out());
        assertEquals("cpu", d.get("backend").asText(), doctor.out());
        assertEquals("[\"npu\",\"opencl\",\"cpu\"]", d.get("backend_order").toString());
        assertEquals("[\"cpu\"]", d.get("backends_available").toString());
        assertTrue(doctor.out().contains("not here: npu, opencl"), doctor.out());
    }

    /** A vocabulary-only GGUF (as llama.cpp ships them) tokenizes as llama.cpp does: no weights needed. */
    @Test
    void tokenizeTakesAVocabularyOnlyFile() throws Exception {
        Path vocab = Path.of(System.getProperty("enclave.shared.dir", "../../../shared")).resolve("fixtures/vocab/ggml-vocab-llama-bpe.gguf");
        // llama.cpp's own reference tokenization of the same text, from its test files
        String[] inputs = Files.readString(Path.of(vocab + ".inp")).split("\n__ggml_vocab_test__\n", -1);
        java.util.List<String> outputs = Files.readAllLines(Path.of(vocab + ".out"));
        int i = java.util.Arrays.asList(inputs).indexOf("Hello world");
        assertTrue(i >= 0);
        Run r = run("tokenize", "--model", vocab.toString(), "--text", "Hello world", "--no-special", "--json");
        assertEquals(0, r.code(), r.err());
        StringBuilder got = new StringBuilder();
        for (JsonNode t : JSON.readTree(r.out()).get("tokens")) got.append(got.isEmpty() ? "" : " ").append(t.asInt());
        assertEquals(outputs.get(i).strip(), got.toString());
    }

    /** perplexity's --json keys (other checks read them) and its one-line refusals. */
    @Test
    void perplexityJsonAndRefusals() throws Exception {
        Path text = Path.of(System.getProperty("enclave.shared.dir", "../../../shared")).resolve("datasets/text/tinystories-valid-801-900.txt");
        Run r = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "256", "--chunks", "4", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = JSON.readTree(r.out());
        for (String key : new String[] {"ppl", "ppl_stderr", "tokens", "ctx", "kv_type", "kv_bytes_per_token"}) {
            assertTrue(j.has(key), "perplexity --json has " + key + ": " + r.out());
        }
        assertEquals(4 * 127, j.get("tokens").asInt());
        assertEquals(256, j.get("ctx").asInt());
        assertEquals("f32", j.get("kv_type").asText());
        assertEquals(2 * 4 * 128 * 4, j.get("kv_bytes_per_token").asInt(), "4 layers, K and V of 2 heads x 64, float32");
        assertTrue(j.get("ppl").asDouble() > 1 && j.get("ppl").asDouble() < 1000, r.out());

        Run streamed = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "64", "--context-shift", "--heavy-hitters", "--max-tokens", "400", "--json");
        assertEquals(0, streamed.code(), streamed.err());
        JsonNode js = JSON.readTree(streamed.out());
        assertEquals(400 - 64, js.get("tokens").asInt());
        assertEquals("heavy-hitters", js.get("eviction").asText());
        assertTrue(js.get("context_shifts").asInt() > 10, streamed.out());
        Run mixed = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--heavy-hitters");
        assertEquals(2, mixed.code());
        assertTrue(mixed.err().startsWith("enclave: --heavy-hitters") && mixed.err().strip().lines().count() == 1, mixed.err());

        Run badKv = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(), "--kv-type", "q5");
        assertEquals(2, badKv.code());
        assertTrue(badKv.err().startsWith("enclave: Invalid value for option '--kv-type'") && badKv.err().contains("unknown KV cache format 'q5'")
                && badKv.err().strip().lines().count() == 1, badKv.err());
        // a quantized, rotated cache: a fraction of the bytes, and the PPL near the float32 cache's
        Run q4 = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "256", "--chunks", "4", "--kv-type", "q8r/q4r", "--json");
        assertEquals(0, q4.code(), q4.err());
        JsonNode jq = JSON.readTree(q4.out());
        assertEquals("q8r/q4r", jq.get("kv_type").asText());
        assertEquals(4 * 128 / 32 * (34 + 18), jq.get("kv_bytes_per_token").asInt(), "ggml's q8_0 and q4_0 block sizes");
        double delta = Math.abs(jq.get("ppl").asDouble() / j.get("ppl").asDouble() - 1);
        assertTrue(delta > 0 && delta < 0.05, "q8r/q4r PPL within 5% of f32: " + jq.get("ppl") + " vs " + j.get("ppl"));
        // adaptive: a per-layer plan within the budget, printed in the form --kv-type takes back
        Run ad = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "256", "--chunks", "2", "--kv-budget", "3.5", "--calibration-chunks", "1", "--json");
        assertEquals(0, ad.code(), ad.err());
        JsonNode ja = JSON.readTree(ad.out());
        assertTrue(ja.get("kv_bits_per_value").asDouble() <= 3.5, ad.out());
        assertEquals(4, ja.get("kv_type").asText().split(",").length, "one type per layer: " + ad.out());
        Run again = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "256", "--chunks", "2", "--kv-type", ja.get("kv_type").asText(), "--json");
        assertEquals(0, again.code(), again.err());
        assertEquals(ja.get("ppl").asDouble(), JSON.readTree(again.out()).get("ppl").asDouble(), 1e-9, "the same plan, the same PPL");
        // transform-coded: calibrated on the model's own writing, saved, and taken back by --kv-type tc:FILE
        Path codeFile = Files.createTempFile("hd64", ".kvc");
        Run tc = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "128", "--chunks", "2", "--kv-code", "2.66", "--calibration-chunks", "4", "--save-kv-code", codeFile.toString(), "--json");
        assertEquals(0, tc.code(), tc.err());
        JsonNode jt = JSON.readTree(tc.out());
        assertEquals("tc:" + codeFile, jt.get("kv_type").asText(), "the type names the saved file: --kv-type takes it back");
        assertTrue(jt.get("kv_bits_per_value").asDouble() <= 2.66 && jt.get("kv_code_value_bits").asDouble() > 0, tc.out());
        assertEquals("self", jt.get("calibration").asText());
        Run tcAgain = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "128", "--chunks", "2", "--kv-type", "tc:" + codeFile, "--json");
        assertEquals(0, tcAgain.code(), tcAgain.err());
        assertEquals(jt.get("ppl").asDouble(), JSON.readTree(tcAgain.out()).get("ppl").asDouble(), 1e-9, "the saved code, the same cache");
        Run windowed = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", text.toString(),
                "--ctx", "128", "--chunks", "1", "--kv-type", "tc:" + codeFile + "+16", "--json");
        assertEquals(0, windowed.code(), windowed.err());
        JsonNode jw = JSON.readTree(windowed.out());
        assertEquals("tc:" + codeFile + "+16", jw.get("kv_type").asText());
        assertEquals(16, jw.get("kv_window").asInt());
        assertEquals(16 * 128 * 2 * 4 * 4, jw.get("kv_window_bytes_per_sequence").asInt(), "16 tokens x K and V of 128 floats x 4 layers");
        for (String[] bad : new String[][] {{"--kv-type", "f32+16"}, {"--kv-type", "q2r+0"}, {"--kv-code", "two"}, {"--kv-code", "9"}, {"--save-kv-code", codeFile.toString()},
                {"--kv-code", "2.5", "--kv-budget", "3"}, {"--kv-type", "tc:" + codeFile + ".missing"}, {"--kv-type", "tc"}}) {
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(),
                    "--file", text.toString()));
            args.addAll(java.util.List.of(bad));
            Run refused = run(args.toArray(String[]::new));
            assertEquals(2, refused.code(), String.join(" ", bad) + ": " + refused.err());
            assertTrue(refused.err().startsWith("enclave: ") && refused.err().strip().lines().count() == 1 && !refused.err().contains("Exception"),
                    String.join(" ", bad) + ": " + refused.err());
        }
        Files.delete(codeFile);
        Path tiny = Files.createTempFile("short", ".txt");
        Files.writeString(tiny, "Once upon a time.");
        Run shortText = run("perplexity", "--model", shared("tinystories-hd64-F32.gguf").toString(), "--file", tiny.toString(), "--ctx", "256");
        assertEquals(2, shortText.code());
        assertTrue(shortText.err().contains("at least 2 x 256") && !shortText.err().contains("Exception"), shortText.err());
        Files.delete(tiny);
    }

    /**
     * Every command and subcommand answers --help with its usage and exit 0 (required options notwithstanding), and
     * every description is a valid format string (picocli formats them: a lone '%' prints a warning and the raw text).
     */
    @Test
    void everyCommandHasAWorkingHelp() {
        java.util.List<java.util.List<String>> paths = new java.util.ArrayList<>();
        collect(dev.enclave.server.EnclaveMain.commandLine(false), new java.util.ArrayList<>(), paths);
        assertTrue(paths.size() > 20, paths.toString());
        for (var path : paths) {
            java.util.List<String> args = new java.util.ArrayList<>(path);
            args.add("--help");
            Run r = run(args.toArray(String[]::new));
            assertEquals(0, r.code(), path + ": " + r.err());
            assertTrue(r.out().contains("Usage:"), path + ": " + r.out());
        }
        checkFormats(dev.enclave.server.EnclaveMain.commandLine(false));
    }

    private static void checkFormats(CommandLine cl) {
        var spec = cl.getCommandSpec();
        // the annotations' own text (the spec's is already interpolated)
        java.util.List<String> texts = new java.util.ArrayList<>();
        java.util.List<Class<?>> classes = new java.util.ArrayList<>(java.util.List.of(spec.userObject().getClass()));
        for (var m : spec.mixins().values()) classes.add(m.userObject().getClass());
        for (Class<?> top : classes) for (Class<?> c = top; c != null && c != Object.class; c = c.getSuperclass()) {
            CommandLine.Command command = c.getAnnotation(CommandLine.Command.class);
            if (command != null) texts.addAll(java.util.List.of(command.description()));
            for (var f : c.getDeclaredFields()) {
                CommandLine.Option o = f.getAnnotation(CommandLine.Option.class);
                if (o != null) texts.addAll(java.util.List.of(o.description()));
                CommandLine.Parameters p = f.getAnnotation(CommandLine.Parameters.class);
                if (p != null) texts.addAll(java.util.List.of(p.description()));
            }
        }
        for (String t : texts) {
            if (!t.contains("%")) continue;
            try {
                String.format(java.util.Locale.ROOT, t, new Object[0]);
            } catch (java.util.IllegalFormatException e) {
                fail(spec.qualifiedName() + ": not a format string (" + e.getMessage() + "): " + t);
            }
        }
        for (var sub : cl.getSubcommands().values()) checkFormats(sub);
    }

    private static void collect(CommandLine cl, java.util.List<String> prefix, java.util.List<java.util.List<String>> out) {
        for (var e : cl.getSubcommands().entrySet()) {
            if (e.getKey().equals("help")) continue;
            var path = new java.util.ArrayList<>(prefix);
            path.add(e.getKey());
            out.add(path);
            collect(e.getValue(), path, out);
        }
    }
}
