package dev.enclave.server.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
class CliContractTest {

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
            int code = new CommandLine(new EnclaveCommand()).execute(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    static Path shared(String file) {
        Path p = Path.of(System.getProperty("enclave.shared.dir", "../../../shared")).resolve("fixtures/models").resolve(file);
        assertTrue(Files.isRegularFile(p), "missing shared fixture " + p);
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
    void clearErrors() {
        Run missing = run("generate", "--model", "/nonexistent/model.gguf", "--prompt", "x");
        assertTrue(missing.code() != 0);
        assertTrue(missing.err().contains("model file not found"), missing.err());
        Run badToken = run("logits", "--tokens", "1,99999", "--json");
        assertEquals(2, badToken.code());
        assertTrue(badToken.err().contains("outside the vocabulary"), badToken.err());
        Run help = run("--help");
        assertEquals(0, help.code());
        for (String cmd : new String[] {"serve", "generate", "tokenize", "logits"}) {
            assertTrue(help.out().contains(cmd), help.out());
            assertEquals(0, run(cmd, "--help").code());
        }
    }
}
