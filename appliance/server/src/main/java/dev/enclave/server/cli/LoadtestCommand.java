package dev.enclave.server.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code enclave loadtest}: drives any OpenAI-compatible server (Enclave, llama-server, vLLM) with streamed chat
 * requests from concurrent clients and reports throughput and latency. Only loopback or the given URL is used.
 */
@Command(name = "loadtest", mixinStandardHelpOptions = true,
        description = "Load an OpenAI-compatible server with concurrent streamed chat requests; report tok/s, TTFT and inter-token latency.")
public class LoadtestCommand implements Callable<Integer> {

    @Option(names = "--url", defaultValue = "http://127.0.0.1:8080", description = "Server base URL (default: ${DEFAULT-VALUE}).")
    String url;

    @Option(names = "--workload", defaultValue = "concurrent",
            description = "single, concurrent, prefix-heavy, or grounded (Enclave only: chats answered from --collection, 4 turns each) (default: ${DEFAULT-VALUE}).")
    String workload;

    @Option(names = "--collection", description = "Document collection the grounded workload's questions are answered from.")
    String collection;

    @Option(names = "--clients", description = "Concurrent clients (default: 1 for single, 4 for concurrent, 8 for prefix-heavy).")
    Integer clients;

    @Option(names = "--requests", defaultValue = "2", description = "Requests per client for single/concurrent (default: ${DEFAULT-VALUE}).")
    int requests;

    @Option(names = "--max-tokens", defaultValue = "64", description = "Tokens to generate per request (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--model", description = "Model name to send (default: the server's first model).")
    String model;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] WORDS = ("the a little girl named lily loved to play outside in park one day she saw big red ball and "
            + "ran after it her friend tom came too they laughed sun was warm birds sang happy tree under blue sky").split(" ");

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final List<Double> ttft = Collections.synchronizedList(new ArrayList<>());
    private final List<Double> followupTtft = Collections.synchronizedList(new ArrayList<>());
    private final List<Double> itl = Collections.synchronizedList(new ArrayList<>());
    private final AtomicLong outputTokens = new AtomicLong();
    private final AtomicInteger errors = new AtomicInteger();
    private final AtomicInteger done = new AtomicInteger();

    @Override
    public Integer call() throws Exception {
        int n = clients != null ? clients : switch (workload) {
            case "single" -> 1;
            case "prefix-heavy" -> 8;
            default -> 4;
        };
        if (!List.of("single", "concurrent", "prefix-heavy", "grounded").contains(workload) || n < 1 || requests < 1 || maxTokens < 1) {
            System.err.println("enclave: --workload must be single, concurrent, prefix-heavy or grounded; counts must be positive");
            return 2;
        }
        if (workload.equals("grounded") && (collection == null || collection.isBlank())) {
            System.err.println("enclave: the grounded workload needs --collection NAME (a collection with documents)");
            return 2;
        }
        if (model == null) model = firstModel();
        String system = words(750, 7);  // about 1,000 tokens
        long t0 = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> fs = new ArrayList<>();
            for (int c = 0; c < n; c++) {
                int client = c;
                fs.add(pool.submit(() -> {
                    if (workload.equals("grounded")) {
                        // a conversation of 4 questions, each answered from the collection: the follow-ups are timed
                        ArrayNode conv = JSON.createArrayNode();
                        conv.addObject().put("role", "system").put("content", "You answer the ward's questions.");
                        for (int turn = 0; turn < 4; turn++) {
                            conv.addObject().put("role", "user").put("content", "Question " + client + "." + turn + ": what is said about "
                                    + words(6, 500 * client + turn) + "?");
                            String answer = chat(conv, turn > 0);
                            conv.addObject().put("role", "assistant").put("content", answer);
                        }
                    } else if (workload.equals("prefix-heavy")) {
                        ArrayNode conv = JSON.createArrayNode();
                        conv.addObject().put("role", "system").put("content", system);
                        conv.addObject().put("role", "user").put("content", "Document " + client + ": " + words(220, 100 + client) + "\nSummarize it.");
                        for (int turn = 0; turn < 5; turn++) {
                            String answer = chat(conv, turn > 0);
                            conv.addObject().put("role", "assistant").put("content", answer);
                            conv.addObject().put("role", "user").put("content", "Tell me more about part " + (turn + 1) + ".");
                        }
                    } else {
                        for (int r = 0; r < requests; r++) {
                            ArrayNode conv = JSON.createArrayNode();
                            conv.addObject().put("role", "user").put("content", "Story " + client + "-" + r + ": " + words(16, 1000 * client + r));
                            chat(conv, false);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) f.get();
        }
        double wall = (System.nanoTime() - t0) / 1e9;
        ObjectNode out = JSON.createObjectNode()
                .put("workload", workload).put("clients", n).put("requests", done.get()).put("errors", errors.get())
                .put("output_tokens", outputTokens.get()).put("wall_s", round(wall)).put("tok_s", round(outputTokens.get() / wall))
                .put("ttft_p50_ms", round(pct(ttft, 50))).put("ttft_p99_ms", round(pct(ttft, 99)))
                .put("itl_p50_ms", round(pct(itl, 50))).put("itl_p99_ms", round(pct(itl, 99)));
        if (workload.equals("prefix-heavy") || workload.equals("grounded")) {
            out.put("followup_ttft_p50_ms", round(pct(followupTtft, 50))).put("followup_ttft_p99_ms", round(pct(followupTtft, 99)));
        }
        if (json) {
            System.out.println(JSON.writeValueAsString(out));
        } else {
            System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out));
        }
        return errors.get() == 0 ? 0 : 1;
    }

    /** One streamed chat request; returns the answer text and records its timings. */
    private String chat(ArrayNode messages, boolean followup) {
        ObjectNode body = JSON.createObjectNode().put("model", model).put("stream", true).put("max_tokens", maxTokens).put("temperature", 0.7);
        body.set("messages", messages);
        body.putObject("stream_options").put("include_usage", true);
        if (workload.equals("grounded")) body.putObject("enclave").put("top_k", 3).putArray("collections").add(collection);
        StringBuilder text = new StringBuilder();
        try {
            HttpRequest req = HttpRequest.newBuilder(URI.create(url + "/v1/chat/completions"))
                    .timeout(Duration.ofMinutes(10))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build();
            long start = System.nanoTime();
            HttpResponse<java.io.InputStream> resp = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
            if (resp.statusCode() != 200) {
                errors.incrementAndGet();
                resp.body().close();
                return "";
            }
            long last = 0;
            long usage = -1;
            int pieces = 0;
            try (BufferedReader r = new BufferedReader(new InputStreamReader(resp.body(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                    JsonNode chunk = JSON.readTree(line.substring(6));
                    if (chunk.has("usage") && chunk.get("usage").has("completion_tokens")) usage = chunk.get("usage").get("completion_tokens").asLong();
                    JsonNode choices = chunk.get("choices");
                    if (choices == null || choices.isEmpty()) continue;
                    JsonNode content = choices.get(0).path("delta").path("content");
                    if (content.isTextual() && !content.asText().isEmpty()) {
                        long now = System.nanoTime();
                        if (last == 0) {
                            (followup ? followupTtft : ttft).add((now - start) / 1e6);
                        } else {
                            itl.add((now - last) / 1e6);
                        }
                        last = now;
                        pieces++;
                        text.append(content.asText());
                    }
                }
            }
            outputTokens.addAndGet(usage >= 0 ? usage : pieces);
            done.incrementAndGet();
        } catch (Exception e) {
            errors.incrementAndGet();
        }
        return text.toString();
    }

    private String firstModel() throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/models")).GET().build(), HttpResponse.BodyHandlers.ofString());
        return JSON.readTree(r.body()).path("data").path(0).path("id").asText("default");
    }

    private static String words(int n, long seed) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) sb.append(i == 0 ? "" : " ").append(WORDS[r.nextInt(WORDS.length)]);
        return sb.toString();
    }

    private static double pct(List<Double> v, int p) {
        if (v.isEmpty()) return 0;
        List<Double> s;
        synchronized (v) {
            s = new ArrayList<>(v);
        }
        Collections.sort(s);
        return s.get(Math.min(s.size() - 1, (int) Math.ceil(p / 100.0 * s.size()) - 1));
    }

    private static double round(double v) {
        return Math.round(v * 100) / 100.0;
    }
}
