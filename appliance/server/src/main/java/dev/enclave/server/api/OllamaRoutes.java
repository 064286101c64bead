package dev.enclave.server.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.model.ModelConfig;
import dev.enclave.server.inference.ApiException;
import dev.enclave.server.inference.InferenceService;
import dev.enclave.server.model.ServedModel;
import dev.enclave.server.security.AuthHandler;
import dev.enclave.server.security.Caller;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * Ollama's API ({@code /api/generate}, {@code /api/chat}, {@code /api/tags}, {@code /api/show},
 * {@code /api/version}, {@code /api/embed}) with newline-delimited JSON streaming, so Ollama clients and tools work
 * unchanged. An adapter only: it renames Ollama's fields to the pipeline's ({@link InferenceService}), which
 * validates, admits and audits exactly as for the OpenAI API.
 */
@ApplicationScoped
public class OllamaRoutes {

    static final String VERSION = "0.9.0";

    private final InferenceService inference;
    private final ObjectMapper json;
    public OllamaRoutes(InferenceService inference, ObjectMapper json) {
        this.inference = inference;
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

    private ObjectNode details(ServedModel m) {
        ModelConfig c = m.model().config();
        long params = 0;
        String quant = "F32";
        long best = -1;
        for (GGUFTensorInfo t : m.model().gguf().tensors().values()) {
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
        ServedModel served = inference.current();
        String name = served.id() + ":latest";
        ObjectNode out = json.createObjectNode();
        ObjectNode m = out.putArray("models").addObject()
                .put("name", name).put("model", name)
                .put("modified_at", Instant.ofEpochSecond(served.createdEpochSeconds()).toString())
                .put("size", served.model().gguf().fileSize())
                .put("digest", Integer.toHexString(served.id().hashCode()));
        m.set("details", details(served));
        send(ctx, 200, out);
    }

    private void show(RoutingContext ctx) {
        JsonNode body = body(ctx);
        if (body == null) return;
        ServedModel served = inference.current();
        String requested = body.path("model").asText(body.path("name").asText(""));
        if (!requested.isEmpty() && !InferenceService.names(served, requested)) {
            error(ctx, 404, "model '" + requested + "' not found");
            return;
        }
        ObjectNode out = json.createObjectNode().put("modelfile", "").put("parameters", "")
                .put("template", served.chatTemplate().map(t -> t.source()).orElse("{{ .Prompt }}"));
        out.set("details", details(served));
        ObjectNode info = out.putObject("model_info");
        for (Map.Entry<String, Object> e : served.model().gguf().metadata().entrySet()) {
            Object v = e.getValue();
            if (v instanceof String s) info.put(e.getKey(), s);
            else if (v instanceof Number n) info.put(e.getKey(), n.doubleValue() == n.longValue() ? json.getNodeFactory().numberNode(n.longValue()) : json.getNodeFactory().numberNode(n.doubleValue()));
            else if (v instanceof Boolean b) info.put(e.getKey(), b);
        }
        out.putArray("capabilities").add("completion");
        send(ctx, 200, out);
    }

    /** Ollama's options, by the name the one validation table ({@code CompletionParams}) knows them, and Ollama's defaults. */
    private static final Map<String, String> OPTIONS = Map.of("temperature", "temperature", "top_k", "top_k", "top_p", "top_p",
            "min_p", "min_p", "typical_p", "typical_p", "repeat_penalty", "repeat_penalty", "repeat_last_n", "repeat_last_n",
            "frequency_penalty", "frequency_penalty", "presence_penalty", "presence_penalty", "seed", "seed");
    private static final Map<String, Object> DEFAULTS = Map.of("temperature", 0.8, "top_k", 40, "top_p", 0.9,
            "repeat_penalty", 1.1, "repeat_last_n", 64);

    /** The request in OpenAI's field names, for the pipeline; what is malformed stays malformed, for it to refuse. */
    private ObjectNode translate(JsonNode body, boolean chat) {
        ObjectNode out = json.createObjectNode();
        if (body.has("model")) out.set("model", body.get("model"));
        if (chat) {
            out.set("messages", body.get("messages"));
            if (body.has("tools")) out.set("tools", body.get("tools"));
        } else {
            JsonNode prompt = body.get("prompt"), system = body.get("system");
            if (prompt != null && !prompt.isNull() && !prompt.isTextual()) throw ApiException.invalid("prompt", "prompt must be a string");
            if (system != null && !system.isNull() && !system.isTextual()) throw ApiException.invalid("system", "system must be a string");
            out.put("prompt", (system != null && system.isTextual() ? system.asText() + "\n" : "") + (prompt == null ? "" : prompt.asText()));
        }
        JsonNode stream = body.get("stream");
        out.set("stream", stream == null || stream.isNull() ? json.getNodeFactory().booleanNode(true) : stream); // Ollama streams unless told not to
        JsonNode o = body.get("options");
        if (o != null && !o.isNull() && !o.isObject()) throw ApiException.invalid("options", "options must be an object");
        DEFAULTS.forEach((k, v) -> out.set(k, json.valueToTree(v)));
        if (o != null && o.isObject()) {
            OPTIONS.forEach((ours, theirs) -> {
                if (o.has(ours)) out.set(theirs, o.get(ours));
            });
            if (o.has("stop")) out.set("stop", o.get("stop"));
            JsonNode np = o.get("num_predict");
            if (np != null && !np.isNull()) {
                if (!np.isIntegralNumber()) throw ApiException.invalid("num_predict", "num_predict must be an integer");
                if (np.asLong() >= 0) out.set("max_tokens", np); // -1, -2: until the context is full
            }
        }
        JsonNode format = body.get("format");
        if (format != null && !format.isNull() && !(format.isTextual() && format.asText().isEmpty())) {
            if (format.isTextual() && format.asText().equals("json")) out.putObject("response_format").put("type", "json_object");
            else if (format.isObject()) out.putObject("response_format").put("type", "json_schema").putObject("json_schema").set("schema", format);
            else throw ApiException.invalid("format", "format must be \"json\" or a JSON schema");
        }
        return out;
    }

    private void generate(RoutingContext ctx, boolean chat) {
        JsonNode body = body(ctx);
        if (body == null) {
            refusedUnread(ctx, chat ? "inference.chat" : "inference.completion");
            return;
        }
        Caller caller = AuthHandler.caller(ctx);
        String ip = AuthHandler.ip(ctx);
        InferenceService.Kind kind = chat ? InferenceService.Kind.CHAT : InferenceService.Kind.COMPLETION;
        if (!chat && !body.has("messages") && body.path("prompt").asText("").isEmpty() && !body.has("system")) {
            // an empty prompt loads the model; nothing to generate
            send(ctx, 200, base(inference.current()).put("response", "").put("done", true).put("done_reason", "load"));
            return;
        }
        ObjectNode request;
        try {
            request = translate(body, chat);
        } catch (ApiException e) {
            inference.refusedUnread("ollama", chat ? "inference.chat" : "inference.completion", caller, ip, e);
            error(ctx, e);
            return;
        }
        var r = new InferenceService.Request(kind, "ollama", request, caller, ip, -1, true);
        ctx.vertx().<InferenceService.Prepared>executeBlocking(() -> inference.prepare(r), false).onComplete(ar -> {
            if (ar.failed()) {
                error(ctx, ar.cause() instanceof ApiException a ? a : new ApiException(500, "server_error", null, null, "internal error"));
            } else if (!ctx.response().closed()) {
                run(ctx, ar.result());
            }
        });
    }

    private void run(RoutingContext ctx, InferenceService.Prepared p) {
        boolean chat = p.chat();
        boolean stream = p.params().stream();
        ServedModel m = p.model();
        HttpServerResponse response = ctx.response();
        if (stream) response.setStatusCode(200).putHeader("Content-Type", "application/x-ndjson").setChunked(true);
        InferenceService.Generation generation;
        try {
            generation = inference.start(p, List.of((token, text) -> {
                if (response.closed()) return false;
                if (stream && !text.isEmpty()) {
                    ObjectNode chunk = base(m);
                    if (chat) chunk.putObject("message").put("role", "assistant").put("content", text);
                    else chunk.put("response", text);
                    chunk.put("done", false);
                    line(response, chunk);
                }
                return true;
            }));
        } catch (ApiException e) {
            response.setChunked(false).headers().remove("Content-Type");
            error(ctx, e);
            return;
        }
        response.closeHandler(v -> generation.cancel());
        generation.results().whenComplete((rs, failure) -> {
            if (response.closed() || response.ended()) return;
            if (failure != null || rs == null) {
                if (stream) response.end(json.createObjectNode().put("error", "generation failed").toString() + "\n");
                else error(ctx, new ApiException(500, "server_error", null, null, "generation failed"));
                return;
            }
            GenerationResult r = rs.get(0);
            ObjectNode last = base(m);
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
        if (body == null) {
            refusedUnread(ctx, "inference.embeddings");
            return;
        }
        try {
            JsonNode model = body.get("model");
            if (model != null && !model.isNull() && !model.isTextual()) throw ApiException.invalid("model", "model must be a string");
            var e = inference.embed(new InferenceService.EmbedRequest("ollama", model == null || model.isNull() ? null : model.asText(),
                    body.get("input"), AuthHandler.caller(ctx), AuthHandler.ip(ctx), () -> ctx.response().closed()));
            ObjectNode out = json.createObjectNode().put("model", e.model().equals(inference.current().id()) ? e.model() + ":latest" : e.model());
            var list = out.putArray("embeddings");
            for (float[] v : e.vectors()) {
                var vec = list.addArray();
                for (float x : v) vec.add(x);
            }
            out.put("prompt_eval_count", e.promptTokens());
            send(ctx, 200, out);
        } catch (ApiException e) {
            error(ctx, e);
        } catch (InferenceService.Cancelled e) {
            // the client went away
        }
    }

    /** A body that is not a JSON object (answered by {@link #body}) is still audited by the pipeline. */
    private void refusedUnread(RoutingContext ctx, String action) {
        inference.refusedUnread("ollama", action, AuthHandler.caller(ctx), AuthHandler.ip(ctx),
                ApiException.invalid(null, "the request body must be a JSON object"));
    }

    private ObjectNode base(ServedModel m) {
        return json.createObjectNode().put("model", m.id() + ":latest").put("created_at", Instant.now().toString());
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

    /** Ollama's error shape for a refusal of the pipeline (a full queue answers 429 with Retry-After). */
    private void error(RoutingContext ctx, ApiException e) {
        if (e.status == 429) ctx.response().putHeader("Retry-After", "1");
        error(ctx, e.status, e.getMessage());
    }
}
