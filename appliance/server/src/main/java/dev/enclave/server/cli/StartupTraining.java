package dev.enclave.server.cli;

import io.quarkus.runtime.Quarkus;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * What {@code serve --startup-training} asks of the server it runs beside: once the port opens (the model loaded,
 * its kernels compiled), one request of each kind a served appliance gets first — health, the panel's first page (set the admin password), the
 * model list, a streamed and a whole chat completion, a completion, Ollama's chat — then the server is told to exit.
 * A JVM started with {@code -XX:AOTCacheOutput} records what they loaded, linked and profiled: the start-up cache the
 * launcher and the installer make, which then holds the server's classes as well as the model runner's.
 */
final class StartupTraining implements Runnable {

    /** The longest a training run waits for its server's port (a slow board compiling its kernels). */
    private static final Duration READY = Duration.ofMinutes(5);

    private final int port;
    private volatile String failure;

    StartupTraining(int port) {
        this.port = port;
    }

    /** Why the run failed, or null when every request was answered as expected. */
    String failure() {
        return failure;
    }

    @Override
    public void run() {
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5))
                .followRedirects(HttpClient.Redirect.NORMAL).build()) {
            awaitPort(http);
            expect(http, get("/"), "<html");
            String models = expect(http, get("/v1/models"), "\"data\"");
            java.util.regex.Matcher id = java.util.regex.Pattern.compile("\"id\"\\s*:\\s*\"([^\"]+)\"").matcher(models);
            if (!id.find()) throw new IOException("GET /v1/models named no model: " + models);
            expect(http, post("/v1/chat/completions", """
                    {"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":16,"stream":true}"""), "[DONE]");
            expect(http, post("/v1/chat/completions", """
                    {"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":8}"""), "\"choices\"");
            expect(http, post("/v1/completions", """
                    {"prompt":"Once upon a time","max_tokens":8,"stream":true}"""), "[DONE]");
            expect(http, post("/api/chat", """
                    {"model":"%s","messages":[{"role":"user","content":"Hello"}],"options":{"num_predict":8}}""".formatted(id.group(1))),
                    "\"done\":true");
        } catch (IOException | RuntimeException e) {
            failure = e.getMessage() == null ? e.toString() : e.getMessage();
        } catch (InterruptedException e) {
            failure = "interrupted";
            Thread.currentThread().interrupt();
        } finally {
            Quarkus.asyncExit(failure == null ? 0 : 1);
        }
    }

    private void awaitPort(HttpClient http) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + READY.toNanos();
        while (true) {
            try {
                HttpResponse<String> r = http.send(get("/q/health"), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) return;
            } catch (ConnectException notYet) {
                // the port opens once the model is ready
            }
            if (System.nanoTime() > deadline) throw new IOException("the server did not answer within " + READY.toMinutes() + " min");
            Thread.sleep(50);
        }
    }

    private HttpRequest get(String path) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(READY).GET().build();
    }

    private HttpRequest post(String path, String json) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(READY)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build();
    }

    /** Sends the request; its body when it answered 200 with {@code marker} in it. */
    private static String expect(HttpClient http, HttpRequest request, String marker) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200 || !r.body().contains(marker)) {
            String body = r.body().strip();
            throw new IOException(request.method() + " " + request.uri().getPath() + " answered " + r.statusCode() + ": "
                    + (body.length() > 200 ? body.substring(0, 200) : body));
        }
        return r.body();
    }
}
