package dev.enclave.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * With enclave.scheduler.context-shift an answer may outgrow the context (the bundled model: 2,048 positions): it
 * is served to its max_tokens; beyond 16 contexts, or a prompt longer than the context, is still refused.
 */
@QuarkusTest
@TestProfile(ContextShiftApiTest.Shifting.class)
class ContextShiftApiTest {

    public static class Shifting implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("enclave.scheduler.context-shift", "true");
        }
    }

    @TestHTTPResource("/v1/completions")
    URL completions;

    private HttpResponse<String> post(String body) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(completions.toString()))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void anAnswerLongerThanTheContextIsServed() throws Exception {
        // the end-of-sequence token (2) biased away, so the story runs to max_tokens
        HttpResponse<String> r = post("{\"prompt\":\"Once upon a time\",\"max_tokens\":2300,\"temperature\":0,\"logit_bias\":{\"2\":-100}}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode j = new ObjectMapper().readTree(r.body());
        assertEquals(2300, j.get("usage").get("completion_tokens").asInt(), r.body());
        assertEquals("length", j.get("choices").get(0).get("finish_reason").asText());
        HttpResponse<String> metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(completions.toString().replace("/v1/completions", "/q/metrics"))).build(),
                HttpResponse.BodyHandlers.ofString());
        assertTrue(metrics.body().lines().anyMatch(l -> l.startsWith("enclave_context_shifts_total ") && !l.endsWith(" 0.0")), "a shift counted in /q/metrics");
        HttpResponse<String> tooLong = post("{\"prompt\":\"Once\",\"max_tokens\":" + (16 * 2048 + 1) + "}");
        assertEquals(400, tooLong.statusCode());
        assertTrue(tooLong.body().contains("max_tokens"), tooLong.body());
    }
}
