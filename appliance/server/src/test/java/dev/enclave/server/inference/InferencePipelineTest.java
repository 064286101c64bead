package dev.enclave.server.inference;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.server.audit.AuditLog;
import dev.enclave.server.security.SecurityService;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every protocol goes through the one pipeline: the same limits refuse the same values whether they come as OpenAI
 * fields or Ollama options, and every inference and every refusal leaves an audit entry naming its protocol.
 */
@QuarkusTest
class InferencePipelineTest {

    @Inject
    SecurityService security;

    private static void ollama(String path, String body, int status) {
        given().contentType(ContentType.JSON).body(body).post(path).then().statusCode(status);
    }

    @Test
    void ollamaOptionsAreValidatedByTheSameTable() {
        String gen = "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"stream\":false,\"options\":{%s}}";
        // once sized an array of 2^31 entries, or of 2*10^8 (out of memory)
        given().contentType(ContentType.JSON).body(gen.formatted("\"repeat_last_n\":2147483647,\"num_predict\":2"))
                .post("/api/generate").then().statusCode(400).body("error", containsString("repeat_last_n"));
        ollama("/api/generate", gen.formatted("\"repeat_last_n\":200000000,\"num_predict\":2"), 400);
        ollama("/api/generate", gen.formatted("\"temperature\":-1,\"num_predict\":2"), 400);
        ollama("/api/chat", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":false,\"options\":{\"top_p\":7}}", 400);
        StringBuilder stops = new StringBuilder();
        for (int i = 0; i < 1000; i++) stops.append(i == 0 ? "" : ",").append("\"s").append(i).append('"');
        given().contentType(ContentType.JSON).body(gen.formatted("\"stop\":[" + stops + "],\"num_predict\":2"))
                .post("/api/generate").then().statusCode(400).body("error", containsString("stop"));
        ollama("/api/generate", "{\"prompt\":\"Once\",\"stream\":false,\"options\":\"hot\"}", 400);
        // in range: -1 is "the whole context", as Ollama means it
        given().contentType(ContentType.JSON).body(gen.formatted("\"repeat_last_n\":-1,\"num_predict\":3,\"temperature\":0"))
                .post("/api/generate").then().statusCode(200).body("eval_count", equalTo(3));
        // a num_predict past the context is cut to it (Ollama's meaning), not refused
        given().contentType(ContentType.JSON).body(gen.formatted("\"num_predict\":4294967297,\"temperature\":0,\"stop\":[\".\"]"))
                .post("/api/generate").then().statusCode(200);
    }

    @Test
    void openAiChoicesDoNotWrapAround() {
        // 2^32 + 2 read as an int is 2: it must be refused, not served as two choices
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"n\":4294967298,\"max_tokens\":2}")
                .post("/v1/chat/completions").then().statusCode(400).body("error.param", equalTo("n"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"Hi\",\"max_tokens\":2,\"top_k\":-3}")
                .post("/v1/completions").then().statusCode(400).body("error.param", equalTo("top_k"));
    }

    @Test
    void aSchemaBombIsRefusedWithTheLimitNamed() {
        String bomb = SchemaCompilerTest.fanOut(12, 4, true);
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,"
                        + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"b\",\"schema\":" + bomb + "}}}")
                .post("/v1/chat/completions").then().statusCode(400).body("error.param", equalTo("response_format"))
                .body("error.message", containsString("limit"));
        // Ollama's format takes a schema too: the same compiler, the same refusal
        given().contentType(ContentType.JSON).body("{\"prompt\":\"Hi\",\"stream\":false,\"format\":" + bomb + "}")
                .post("/api/generate").then().statusCode(400).body("error", containsString("limit"));
    }

    @Test
    void everyProtocolsInferenceAndRefusalIsAudited() throws Exception {
        long before = last();
        ollama("/api/generate", "{\"prompt\":\"Once\",\"stream\":false,\"options\":{\"num_predict\":2}}", 200);
        ollama("/api/chat", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":false,\"options\":{\"num_predict\":2}}", 200);
        ollama("/api/embed", "{\"model\":\"stories260K\",\"input\":\"Lily\"}", 200);
        ollama("/v1/embeddings", "{\"model\":\"stories260K\",\"input\":[\"Lily\",\"Tom\"]}", 200);
        ollama("/api/generate", "{\"prompt\":\"Once\",\"options\":{\"temperature\":-2}}", 400);
        ollama("/v1/embeddings", "{\"model\":\"stories260K\",\"input\":[]}", 400);
        ollama("/api/chat", "{\"model\":\"llama3:70b\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", 404);
        given().contentType(ContentType.JSON).body("{\"prompt\": nope").post("/v1/completions").then().statusCode(400);
        List<AuditLog.Entry> entries = since(before);
        assertHas(entries, "inference.completion", "protocol=ollama");
        assertHas(entries, "inference.chat", "protocol=ollama");
        assertHas(entries, "inference.embeddings", "protocol=ollama");
        assertHas(entries, "inference.embeddings", "protocol=openai");
        assertHas(entries, "inference.refused", "protocol=ollama status=400");
        assertHas(entries, "inference.refused", "protocol=openai status=400");
        assertHas(entries, "inference.refused", "protocol=ollama status=404");
        long refusals = entries.stream().filter(e -> e.action().equals("inference.refused")).count();
        assertEquals(4, refusals, entries.toString());
    }

    private long last() throws Exception {
        List<AuditLog.Entry> e = security.auditLog().list(null, null, 1, 0);
        return e.isEmpty() ? 0 : e.get(0).seq();
    }

    private List<AuditLog.Entry> since(long seq) throws Exception {
        // entries are written as requests finish: give the last one a moment
        Thread.sleep(200);
        return security.auditLog().list(null, null, 200, 0).stream().filter(e -> e.seq() > seq).toList();
    }

    private static void assertHas(List<AuditLog.Entry> entries, String action, String detail) {
        assertTrue(entries.stream().anyMatch(e -> e.action().equals(action) && e.detail().contains(detail)),
                "no " + action + " entry with '" + detail + "' in " + entries);
    }
}
