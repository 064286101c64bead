package dev.enclave.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * One sequence at a time and a queue of one: the third concurrent request is refused at once with 429, and so is
 * every other computing request (embeddings, Ollama) while the queue is full.
 */
@QuarkusTest
@TestProfile(BackpressureTest.Tiny.class)
class BackpressureTest {

    public static class Tiny implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("enclave.scheduler.max-active", "1", "enclave.scheduler.queue", "1");
        }
    }

    @TestHTTPResource("/v1/completions")
    URL completions;

    @Test
    void excessRequestsGet429WithRetryAfter() throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        HttpRequest longOne = HttpRequest.newBuilder(URI.create(completions.toString()))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Once upon a time\",\"max_tokens\":1500,\"temperature\":0,\"stream\":true}"))
                .build();
        CompletableFuture<HttpResponse<java.io.InputStream>> running = client.sendAsync(longOne, HttpResponse.BodyHandlers.ofInputStream());
        HttpResponse<java.io.InputStream> first = running.get();
        assertEquals(200, first.statusCode());
        first.body().read(new byte[64]); // generation has started: the one active slot is taken
        CompletableFuture<HttpResponse<String>> queued = client.sendAsync(HttpRequest.newBuilder(URI.create(completions.toString()))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Hi\",\"max_tokens\":4}")).build(), HttpResponse.BodyHandlers.ofString());
        Thread.sleep(200); // let it reach the queue
        long t0 = System.nanoTime();
        HttpResponse<String> refused = client.send(HttpRequest.newBuilder(URI.create(completions.toString()))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Hello\",\"max_tokens\":4}")).build(), HttpResponse.BodyHandlers.ofString());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(429, refused.statusCode());
        assertTrue(refused.headers().firstValue("Retry-After").isPresent());
        assertTrue(refused.body().contains("queue_full"), refused.body());
        assertTrue(ms < 500, "refusal took " + ms + " ms");
        System.out.println("429 after " + ms + " ms");
        // everything that computes is admitted the same way, whichever protocol: embeddings and Ollama too
        String base = completions.toString().replace("/v1/completions", "");
        for (String[] call : new String[][] {{"/v1/embeddings", "{\"model\":\"stories260K\",\"input\":\"Lily\"}"},
                {"/api/embed", "{\"model\":\"stories260K\",\"input\":\"Lily\"}"},
                {"/api/generate", "{\"prompt\":\"Hello\",\"options\":{\"num_predict\":4}}"}}) {
            HttpResponse<String> busy = client.send(HttpRequest.newBuilder(URI.create(base + call[0]))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(call[1])).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(429, busy.statusCode(), call[0] + ": " + busy.body());
            assertTrue(busy.headers().firstValue("Retry-After").isPresent(), call[0]);
        }
        first.body().close(); // the client goes away: its sequence is cancelled and the queued request runs
        assertEquals(200, queued.get().statusCode());
    }
}
