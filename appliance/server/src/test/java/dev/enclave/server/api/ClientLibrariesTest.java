package dev.enclave.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.io.File;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The official openai and ollama JavaScript clients (npm, pinned in src/test/js/package.json) against the running
 * server: plain and streamed chat through each. Node is on every machine here; the packages are installed from the
 * npm registry on first run.
 */
@QuarkusTest
class ClientLibrariesTest {

    @TestHTTPResource("/")
    URL root;

    @Test
    void officialJavaScriptClientsWork() throws Exception {
        File dir = new File("src/test/js");
        if (!new File(dir, "node_modules/openai").isDirectory() || !new File(dir, "node_modules/ollama").isDirectory()) {
            run(dir, 300, "npm", "install", "--no-audit", "--no-fund");
        }
        String base = root.toString().replaceAll("/$", "");
        String out = run(dir, 120, "node", "clients.mjs", base, "stories260K");
        JsonNode r = new ObjectMapper().readTree(out.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow());
        for (String k : List.of("openai_plain", "openai_stream", "ollama_generate", "ollama_chat_stream")) {
            assertEquals(OpenAiApiTest.GREEDY_16, r.get(k).asText(), k);
        }
        assertTrue(r.get("ollama_tags").toString().contains("stories260K:latest"), r.toString());
    }

    private static String run(File dir, int seconds, String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).directory(dir).redirectErrorStream(true).start();
        byte[] output = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(seconds, TimeUnit.SECONDS), String.join(" ", cmd) + " did not finish");
        String text = new String(output, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + " failed:\n" + text);
        return text;
    }
}
