package dev.enclave.server.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.runtime.generate.ContextLengthExceededException;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.model.ModelConfig;
import dev.enclave.runtime.sampling.Sampler;
import dev.enclave.runtime.sampling.SamplingParams;
import dev.enclave.runtime.serve.ContinuousBatchScheduler;
import dev.enclave.runtime.serve.QueueFullException;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.server.model.ModelService;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Ollama's API ({@code /api/generate}, {@code /api/chat}, {@code /api/tags}, {@code /api/show},
 * {@code /api/version}) with newline-delimited JSON streaming, so Ollama clients and tools work unchanged. It
 * runs on the same scheduler as the OpenAI API.
 */
@ApplicationScoped
public class OllamaRoutes {

    static final String VERSION = "0.9.0";

    private final ModelService models;
    private final ObjectMapper json;

    public OllamaRoutes(ModelService models, ObjectMapper json) {
        this.models = models;
        this.json = json;
    }

    void register(@Observes Router router) {
        router.route("/api/*").handler(BodyHandler.create(false).setBodyLimit(OpenAiRoutes.MAX_BODY_BYTES));
        router.get("/api/version").handler(ctx -> send(ctx, 200, json.createObjectNode().put("version", VERSION)));
        router.get("/api/tags").handler(this::tags);
        router.post("/api/show").handler(this::show);
        router.post("/api/generate").handler(ctx -> generate(ctx, false));
        router.post("/api/chat").handler(ctx -> generate(ctx, true));
        router.post("/api/embed").blockingHandler(this::embed, false);
        router.route("/api/*").handler(ctx -> error(ctx, 404, "unknown endpoint " + ctx.request().method() + " " + ctx.request().path()));
        router.route("/api/*").failureHandler(ctx -> error(ctx, ctx.statusCode() == 413 ? 413 : 500,
                ctx.statusCode() == 413 ? "request body too large" : "internal error"));
    }

    private String name() {
        return models.modelId() + ":latest";
    }

    private boolean matches(String requested) {
        return requested == null || requested.isEmpty() || requested.equals(models.modelId()) || requested.equals(name());
    }

    private ObjectNode details() {
        ModelConfig c = models.model().config();
        long params = 0;
        String quant = "F32";
        long best = -1;
        for (GGUFTensorInfo t : models.model().gguf().tensors().values()) {
            params += t.elements();
            if (t.byteSize() > best && t.dims().length == 2) {
                best = t.byteSize();
                quant = t.type().name();
            }
        }
        ObjectNode d = json.createObjectNode().put("parent_model", "").put("format", "gguf").put("family", c.architecture());
        d.putArray("families").add(c.architecture());
        d.put("parameter_size", params >= 1e9 ? String.format("%.1fB", params / 1e9) : params >= 1e6 ? String.format("%.0fM", params / 1e6) : String.format("%.0fK", params / 1e3));
        d.put("quantization_level", quant);
        return d;
    }

    private void tags(RoutingContext ctx) {
        ObjectNode out = json.createObjectNode();
        ObjectNode m = out.putArray("models").addObject()
                .put("name", name()).put("model", name())
                .put("modified_at", Instant.ofEpochSecond(models.createdEpochSeconds()).toString())
                .put("size", models.model().gguf().fileSize())
                .put("digest", Integer.toHexString(models.modelId().hashCode()));
        m.set("details", details());
        send(ctx, 200, out);
    }

    private void show(RoutingContext ctx) {
        JsonNode body = body(ctx);
        if (body == null) return;
        String requested = body.path("model").asText(body.path("name").asText(""));
        if (!matches(requested)) {
            error(ctx, 404, "model '" + requested + "' not found");
            return;
        }
        ObjectNode out = json.createObjectNode().put("modelfile", "").put("parameters", "")
                .put("template", models.chatTemplate().map(t -> t.source()).orElse("{{ .Prompt }}"));
        out.set("details", details());
        ObjectNode info = out.putObject("model_info");
        for (Map.Entry<String, Object> e : models.model().gguf().metadata().entrySet()) {
            Object v = e.getValue();
            if (v instanceof String s) info.put(e.getKey(), s);
            else if (v instanceof Number n) info.put(e.getKey(), n.doubleValue() == n.longValue() ? json.getNodeFactory().numberNode(n.longValue()) : json.getNodeFactory().numberNode(n.doubleValue()));
            else if (v instanceof Boolean b) info.put(e.getKey(), b);
        }
        out.putArray("capabilities").add("completion");
        send(ctx, 200, out);
    }

    private void generate(RoutingContext ctx, boolean chat) {
        JsonNode body = body(ctx);
        if (body == null) return;
        String requested = body.path("model").asText("");
        if (!matches(requested)) {
            error(ctx, 404, "model '" + requested + "' not found, try pulling it first");
            return;
        }
        Tokenizer tok = models.model().tokenizer();
        AnswerTokens answers = models.answerTokens();
        int ctxLen = models.model().config().contextLength();
        int[] prompt;
        try {
            if (chat) {
                prompt = ChatPrompt.tokens(body.get("messages"), body.get("tools"), models.chatTemplate(), tok, answers);
            } else {
                String text = body.path("system").isTextual() ? body.get("system").asText() + "\n" : "";
                text += body.path("prompt").asText("");
                if (text.isEmpty()) { // an empty prompt loads the model; nothing to generate
                    ObjectNode done = base().put("response", "").put("done", true).put("done_reason", "load");
                    send(ctx, 200, done);
                    return;
                }
                prompt = tok.encode(text, true, false);
            }
        } catch (ApiException e) {
            error(ctx, e.status, e.getMessage());
            return;
        }
        JsonNode o = body.path("options");
        int numPredict = o.path("num_predict").asInt(-1);
        int maxTokens = numPredict < 0 ? ctxLen - prompt.length : Math.min(numPredict, ctxLen - prompt.length);
        if (prompt.length >= ctxLen || maxTokens < 1) {
            error(ctx, 400, "the prompt (" + prompt.length + " tokens) does not fit the model's context of " + ctxLen);
            return;
        }
        List<String> stop = new ArrayList<>();
        if (o.path("stop").isArray()) for (JsonNode s : o.get("stop")) stop.add(s.asText());
        SamplingParams sampling;
        try {
            sampling = new SamplingParams((float) o.path("temperature").asDouble(0.8), o.path("top_k").asInt(40),
                    (float) o.path("top_p").asDouble(0.9), (float) o.path("min_p").asDouble(0.0), (float) o.path("typical_p").asDouble(1.0),
                    (float) o.path("repeat_penalty").asDouble(1.1), o.path("repeat_last_n").asInt(64),
                    (float) o.path("frequency_penalty").asDouble(0), (float) o.path("presence_penalty").asDouble(0), Map.of(),
                    o.has("seed") ? o.get("seed").asLong() : System.nanoTime());
        } catch (IllegalArgumentException e) {
            error(ctx, 400, e.getMessage());
            return;
        }
        boolean stream = body.path("stream").asBoolean(true); // Ollama streams unless told not to
        GenerationRequest request = new GenerationRequest(prompt, maxTokens, Sampler.of(sampling), stop, false);
        HttpServerResponse response = ctx.response();
        if (stream) response.setStatusCode(200).putHeader("Content-Type", "application/x-ndjson").setChunked(true);
        ContinuousBatchScheduler.Handle handle;
        try {
            handle = models.submit(request, (token, text) -> {
                if (response.closed()) return false;
                if (stream && !text.isEmpty()) {
                    ObjectNode chunk = base();
                    if (chat) chunk.putObject("message").put("role", "assistant").put("content", text);
                    else chunk.put("response", text);
                    chunk.put("done", false);
                    line(response, chunk);
                }
                return true;
            });
        } catch (QueueFullException e) {
            response.setChunked(false).headers().remove("Content-Type");
            response.putHeader("Retry-After", "1");
            error(ctx, 429, "server busy, please retry");
            return;
        } catch (ContextLengthExceededException e) {
            response.setChunked(false).headers().remove("Content-Type");
            error(ctx, 400, e.getMessage());
            return;
        }
        response.closeHandler(v -> handle.cancel());
        handle.result().whenComplete((r, failure) -> {
            if (response.closed() || response.ended()) return;
            if (failure != null || r == null) {
                if (stream) response.end(json.createObjectNode().put("error", "generation failed").toString() + "\n");
                else error(ctx, 500, "generation failed");
                return;
            }
            boolean withTools = body.path("tools").isArray() && !body.path("tools").isEmpty();
            if (chat && !withTools) answers.record(r, tok);
            ObjectNode last = base();
            if (chat) last.putObject("message").put("role", "assistant").put("content", stream ? "" : r.text());
            else last.put("response", stream ? "" : r.text());
            last.put("done", true).put("done_reason", r.finishReason().openAiName)
                    .put("total_duration", r.promptNanos() + r.generationNanos()).put("load_duration", 0)
                    .put("prompt_eval_count", r.promptTokens()).put("prompt_eval_duration", r.promptNanos())
                    .put("eval_count", r.completionTokens()).put("eval_duration", r.generationNanos());
            if (stream) {
                line(response, last);
                response.end();
            } else {
                send(ctx, 200, last);
            }
        });
    }

    private void embed(RoutingContext ctx) {
        JsonNode body = body(ctx);
        if (body == null) return;
        String requested = body.path("model").asText("");
        if (!matches(requested)) {
            error(ctx, 404, "model '" + requested + "' not found");
            return;
        }
        JsonNode input = body.get("input");
        List<String> texts = new ArrayList<>();
        if (input != null && input.isTextual()) texts.add(input.asText());
        else if (input != null && input.isArray()) for (JsonNode e : input) texts.add(e.asText());
        if (texts.isEmpty() || texts.size() > 256) {
            error(ctx, 400, "input must be a string or an array of 1 to 256 strings");
            return;
        }
        ObjectNode out = json.createObjectNode().put("model", name());
        var list = out.putArray("embeddings");
        int total = 0;
        for (String t : texts) {
            int[] ids = models.model().tokenizer().encode(t, true, false);
            if (ids.length > models.model().config().contextLength()) {
                error(ctx, 400, "input longer than the model's context");
                return;
            }
            total += ids.length;
            var vec = list.addArray();
            for (float v : models.model().embed(ids)) vec.add(v);
        }
        out.put("prompt_eval_count", total);
        send(ctx, 200, out);
    }

    private ObjectNode base() {
        return json.createObjectNode().put("model", name()).put("created_at", Instant.now().toString());
    }

    private void line(HttpServerResponse response, ObjectNode node) {
        try {
            response.write(json.writeValueAsString(node) + "\n");
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private JsonNode body(RoutingContext ctx) {
        try {
            JsonNode n = ctx.body() == null || ctx.body().length() == 0 ? null : json.readTree(ctx.body().buffer().getBytes());
            if (n == null || !n.isObject()) {
                error(ctx, 400, "the request body must be a JSON object");
                return null;
            }
            return n;
        } catch (Exception e) {
            error(ctx, 400, "malformed JSON in request body");
            return null;
        }
    }

    private void send(RoutingContext ctx, int status, JsonNode body) {
        if (ctx.response().ended() || ctx.response().closed()) return;
        ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body.toString());
    }

    private void error(RoutingContext ctx, int status, String message) {
        send(ctx, status, json.createObjectNode().put("error", message));
    }
}
