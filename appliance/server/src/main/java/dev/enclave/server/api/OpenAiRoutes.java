package dev.enclave.server.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.enclave.runtime.generate.ContextLengthExceededException;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.generate.TokenLogprobs;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.server.inference.ApiException;
import dev.enclave.server.inference.CompletionParams;
import dev.enclave.server.inference.InferenceService;
import dev.enclave.server.inference.ToolCallParser;
import dev.enclave.server.model.ServedModel;
import dev.enclave.server.security.AuthHandler;
import java.util.ArrayList;
import java.util.List;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * The OpenAI-compatible API: {@code /v1/models}, {@code /v1/completions}, {@code /v1/chat/completions},
 * {@code /v1/embeddings}, with Server-Sent Events streaming ending in {@code data: [DONE]} and OpenAI's error JSON.
 * An adapter only: it parses the body and hands it to the {@link InferenceService} (validation, grounding, prompt,
 * admission, audit), then streams the tokens the scheduler's thread gives it; a client that disconnects cancels.
 */
@ApplicationScoped
public class OpenAiRoutes {

    private static final Logger LOG = Logger.getLogger(OpenAiRoutes.class);
    static final long MAX_BODY_BYTES = 8L * 1024 * 1024;
    private static final SecureRandom IDS = new SecureRandom();

    private final InferenceService inference;
    private final ObjectMapper json;
    public OpenAiRoutes(InferenceService inference, ObjectMapper json) {
        this.inference = inference;
        this.json = json;
    }

    void register(@Observes Router router) {
        router.route("/v1/*").handler(BodyHandler.create(false).setBodyLimit(MAX_BODY_BYTES));
        router.get("/v1/models").handler(this::listModels);
        router.get("/v1/models/:id").handler(this::getModel);
        router.post("/v1/completions").handler(ctx -> completion(ctx, false));
        router.post("/v1/chat/completions").handler(ctx -> completion(ctx, true));
        router.post("/v1/embeddings").blockingHandler(this::embeddings, false);
        router.route("/v1/*").handler(ctx -> sendError(ctx, new ApiException(404, "invalid_request_error", "unknown_url", null,
                "Unknown request URL: " + ctx.request().method() + " " + ctx.request().path())));
        router.route("/v1/*").failureHandler(this::failure);
    }

    // ---- models ----

    private void listModels(RoutingContext ctx) {
        ObjectNode body = json.createObjectNode().put("object", "list");
        body.putArray("data").add(modelObject(inference.current()));
        sendJson(ctx, 200, body);
    }

    private void getModel(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        ServedModel m = inference.current();
        if (!m.id().equals(id)) {
            sendError(ctx, ApiException.modelNotFound(id));
            return;
        }
        sendJson(ctx, 200, modelObject(m));
    }

    /** OpenAI's model object, with where it runs: {@code backend}, and {@code layers} per backend. */
    private ObjectNode modelObject(ServedModel m) {
        ObjectNode o = json.createObjectNode()
                .put("id", m.id())
                .put("object", "model")
                .put("created", m.createdEpochSeconds())
                .put("owned_by", "enclave");
        dev.enclave.runtime.backend.Placement where = m.engine().placement();
        o.put("backend", where.backend());
        ObjectNode layers = o.putObject("layers");
        where.layers().forEach(layers::put);
        return o;
    }

    // ---- embeddings: the document embedder or pooled from the served model ----

    private void embeddings(RoutingContext ctx) {
        try {
            JsonNode body;
            JsonNode model;
            try {
                body = parseBody(ctx);
                model = body.get("model");
                if (model != null && !model.isNull() && !model.isTextual()) throw ApiException.invalid("model", "model must be a string");
            } catch (ApiException e) {
                inference.refusedUnread("openai", "inference.embeddings", AuthHandler.caller(ctx), AuthHandler.ip(ctx), e);
                throw e;
            }
            var e = inference.embed(new InferenceService.EmbedRequest("openai", model == null || model.isNull() ? null : model.asText(),
                    body.get("input"), AuthHandler.caller(ctx), AuthHandler.ip(ctx), () -> ctx.response().closed()));
            ObjectNode out = json.createObjectNode().put("object", "list").put("model", e.model());
            var data = out.putArray("data");
            for (int i = 0; i < e.vectors().size(); i++) {
                var vec = data.addObject().put("object", "embedding").put("index", i).putArray("embedding");
                for (float v : e.vectors().get(i)) vec.add(v);
            }
            out.putObject("usage").put("prompt_tokens", e.promptTokens()).put("total_tokens", e.promptTokens());
            sendJson(ctx, 200, out);
        } catch (ApiException e) {
            sendError(ctx, e);
        } catch (InferenceService.Cancelled e) {
            // the client went away: nothing to answer
        }
    }

    // ---- completions ----

    private void completion(RoutingContext ctx, boolean chat) {
        final JsonNode parsed;
        try {
            parsed = parseBody(ctx);
        } catch (ApiException e) {
            inference.refusedUnread("openai", chat ? "inference.chat" : "inference.completion", AuthHandler.caller(ctx),
                    AuthHandler.ip(ctx), e);
            sendError(ctx, e);
            return;
        }
        var request = new InferenceService.Request(chat ? InferenceService.Kind.CHAT : InferenceService.Kind.COMPLETION,
                "openai", (ObjectNode) parsed, AuthHandler.caller(ctx), AuthHandler.ip(ctx), chat ? -1 : 16, false);
        // validation, retrieval and template rendering may take a while: off the event loop
        ctx.vertx().<InferenceService.Prepared>executeBlocking(() -> inference.prepare(request), false).onComplete(ar -> {
            if (ar.failed()) {
                sendError(ctx, ar.cause() instanceof ApiException a ? a
                        : new ApiException(500, "server_error", null, null, "the request could not be prepared"));
                if (!(ar.cause() instanceof ApiException)) LOG.error("preparing a request failed", ar.cause());
            } else if (!ctx.response().closed()) {
                if (ar.result().params().n() > 1) generateMany(ctx, ar.result());
                else generate(ctx, ar.result());
            }
        });
    }

    private void generate(RoutingContext ctx, InferenceService.Prepared p) {
        final boolean chat = p.chat();
        final String id = (chat ? "chatcmpl-" : "cmpl-") + randomId();
        final long created = System.currentTimeMillis() / 1000;
        final CompletionParams params = p.params();
        final List<String> toolNames = p.toolNames();
        final String modelId = p.model().id();
        final Tokenizer tok = p.tokenizer();
        final ArrayNode citations = p.citations();

        HttpServerResponse response = ctx.response();
        String object = chat ? "chat.completion.chunk" : "text_completion";
        if (params.stream()) {
            // headers are prepared now but only sent with the first event, which the scheduler thread may write
            // at any moment after submit
            response.setStatusCode(200)
                    .putHeader("Content-Type", "text/event-stream; charset=utf-8")
                    .putHeader("Cache-Control", "no-cache")
                    .putHeader("X-Accel-Buffering", "no")
                    .setChunked(true);
        }
        AtomicBoolean roleSent = new AtomicBoolean(!chat);
        List<TokenLogprobs> pending = new ArrayList<>(); // logprobs of tokens whose text is still held back
        List<TokenLogprobs> all = new ArrayList<>();
        boolean stream = params.stream();
        boolean buffered = !toolNames.isEmpty(); // with tools, the answer may be a call: parse it whole at the end
        InferenceService.Generation generation;
        try {
            generation = inference.start(p, List.of(new TokenListener() {
                @Override
                public boolean onToken(int token, String text) {
                    return onToken(token, text, null);
                }

                @Override
                public boolean onToken(int token, String text, TokenLogprobs lp) {
                    if (response.closed()) return false;
                    if (lp != null) {
                        pending.add(lp);
                        if (!stream) all.add(lp);
                    }
                    if (stream && !buffered && !text.isEmpty()) {
                        sendRoleOnce(response, roleSent, object, id, created, modelId);
                        ObjectNode chunk = envelope(object, id, created, modelId);
                        ObjectNode c = chunk.putArray("choices").addObject().put("index", 0);
                        if (chat) c.putObject("delta").put("content", text);
                        else c.put("text", text);
                        if (params.topLogprobs() >= 0) c.set("logprobs", logprobs(chat, pending, tok));
                        else c.putNull("logprobs");
                        c.putNull("finish_reason");
                        sendEvent(response, chunk);
                        pending.clear();
                    }
                    return true;
                }
            }));
        } catch (ApiException e) {
            response.setChunked(false).headers().remove("Content-Type");
            sendError(ctx, e);
            return;
        }
        response.closeHandler(v -> generation.cancel());
        generation.results().whenComplete((rs, failure) -> {
            GenerationResult r = rs == null ? null : rs.get(0);
            if (params.stream()) {
                finishStream(response, chat, id, created, modelId, params, r, failure, roleSent, buffered ? toolNames : null, citations);
            } else {
                respond(ctx, chat, id, created, modelId, r, failure, params.topLogprobs() >= 0 ? all : null, toolNames, citations, tok);
            }
        });
    }

    /**
     * n > 1: n choices of one prompt. The scheduler reads the prompt once and forks it (copy-on-write KV blocks); the
     * choices stream interleaved, each chunk carrying its choice index; [DONE] follows the last one.
     */
    private void generateMany(RoutingContext ctx, InferenceService.Prepared p) {
        final boolean chat = p.chat();
        final String id = (chat ? "chatcmpl-" : "cmpl-") + randomId();
        final long created = System.currentTimeMillis() / 1000;
        final CompletionParams params = p.params();
        final String modelId = p.model().id();
        final Tokenizer tok = p.tokenizer();
        int n = params.n();
        HttpServerResponse response = ctx.response();
        String object = chat ? "chat.completion.chunk" : "text_completion";
        boolean stream = params.stream();
        if (stream) {
            response.setStatusCode(200).putHeader("Content-Type", "text/event-stream; charset=utf-8")
                    .putHeader("Cache-Control", "no-cache").putHeader("X-Accel-Buffering", "no").setChunked(true);
        }
        List<TokenListener> listeners = new ArrayList<>();
        boolean[] roleSent = new boolean[n];
        List<List<TokenLogprobs>> logprobs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            List<TokenLogprobs> mine = new ArrayList<>();
            logprobs.add(mine);
            int index = i;
            listeners.add(new TokenListener() {
                @Override
                public boolean onToken(int token, String text) {
                    return onToken(token, text, null);
                }

                @Override
                public boolean onToken(int token, String text, TokenLogprobs lp) {
                    if (response.closed()) return false;
                    if (lp != null) mine.add(lp);
                    if (stream && !text.isEmpty()) {
                        if (chat && !roleSent[index]) {
                            roleSent[index] = true;
                            sendEvent(response, choiceChunk(object, id, created, modelId, index, true, null, null));
                        }
                        ObjectNode chunk = choiceChunk(object, id, created, modelId, index, false, text, null);
                        ObjectNode c = (ObjectNode) chunk.get("choices").get(0);
                        if (params.topLogprobs() >= 0) {
                            c.set("logprobs", logprobs(chat, mine, tok));
                            mine.clear();
                        }
                        sendEvent(response, chunk);
                    }
                    return true;
                }
            });
        }
        InferenceService.Generation generation;
        try {
            generation = inference.start(p, listeners);
        } catch (ApiException e) {
            response.setChunked(false).headers().remove("Content-Type");
            sendError(ctx, e);
            return;
        }
        response.closeHandler(v -> generation.cancel());
        generation.results().whenComplete((results, failure) -> {
            if (response.closed() || response.ended()) return;
            if (failure != null) {
                LOG.error("generation failed", failure);
                if (stream) {
                    ObjectNode err = json.createObjectNode();
                    err.putObject("error").put("message", "generation failed").put("type", "server_error");
                    sendEvent(response, err);
                    response.end("data: [DONE]\n\n");
                } else {
                    sendError(ctx, new ApiException(500, "server_error", null, null, "generation failed"));
                }
                return;
            }
            int completionTokens = 0;
            for (GenerationResult r : results) completionTokens += r.completionTokens();
            int promptTokens = p.prompt().length;
            ObjectNode usage = json.createObjectNode().put("prompt_tokens", promptTokens)
                    .put("completion_tokens", completionTokens).put("total_tokens", promptTokens + completionTokens);
            if (stream) {
                for (int i = 0; i < n; i++) {
                    if (chat && !roleSent[i]) sendEvent(response, choiceChunk(object, id, created, modelId, i, true, null, null));
                    sendEvent(response, choiceChunk(object, id, created, modelId, i, false, chat ? null : "", results.get(i).finishReason().openAiName));
                }
                endStream(response, object, id, created, modelId, params.includeUsage() ? usage : null, p.citations());
            } else {
                ObjectNode out = envelope(chat ? "chat.completion" : "text_completion", id, created, modelId);
                var choices = out.putArray("choices");
                for (int i = 0; i < n; i++) {
                    ObjectNode c = choices.addObject().put("index", i);
                    if (chat) c.putObject("message").put("role", "assistant").put("content", results.get(i).text());
                    else c.put("text", results.get(i).text());
                    if (params.topLogprobs() >= 0) c.set("logprobs", logprobs(chat, logprobs.get(i), tok));
                    else c.putNull("logprobs");
                    c.put("finish_reason", results.get(i).finishReason().openAiName);
                }
                out.set("usage", usage);
                if (p.citations() != null) out.putObject("enclave").set("citations", p.citations());
                sendJson(ctx, 200, out);
            }
        });
    }

    /** One streamed chunk of choice {@code index}: the role opener, a piece of text, or the final finish reason. */
    private ObjectNode choiceChunk(String object, String id, long created, String modelId, int index, boolean role, String text, String finish) {
        ObjectNode chunk = envelope(object, id, created, modelId);
        ObjectNode c = chunk.putArray("choices").addObject().put("index", index);
        boolean chat = object.startsWith("chat");
        if (chat) {
            ObjectNode d = c.putObject("delta");
            if (role) d.put("role", "assistant").put("content", "");
            else if (text != null) d.put("content", text);
        } else {
            c.put("text", text == null ? "" : text);
        }
        c.putNull("logprobs");
        if (finish == null) c.putNull("finish_reason");
        else c.put("finish_reason", finish);
        return chunk;
    }

    private void respond(RoutingContext ctx, boolean chat, String id, long created, String modelId, GenerationResult r,
                         Throwable failure, List<TokenLogprobs> logprobs, List<String> toolNames, ArrayNode citations,
                         Tokenizer tok) {
        if (failure != null || r == null) {
            LOG.error("generation failed", failure);
            sendError(ctx, new ApiException(500, "server_error", null, null, "generation failed"));
            return;
        }
        ObjectNode out = envelope(chat ? "chat.completion" : "text_completion", id, created, modelId);
        ObjectNode choice = out.putArray("choices").addObject().put("index", 0);
        String finish = r.finishReason().openAiName;
        if (chat) {
            ObjectNode message = choice.putObject("message").put("role", "assistant");
            ToolCallParser.Parsed parsed = toolNames.isEmpty() ? null : ToolCallParser.parse(r.text(), toolNames);
            if (parsed != null && !parsed.calls().isEmpty()) {
                if (parsed.content().isEmpty()) message.putNull("content");
                else message.put("content", parsed.content());
                message.set("tool_calls", toolCalls(parsed.calls(), false));
                finish = "tool_calls";
            } else {
                message.put("content", r.text());
            }
        } else {
            choice.put("text", r.text());
        }
        if (logprobs != null) choice.set("logprobs", logprobs(chat, logprobs, tok));
        else choice.putNull("logprobs");
        choice.put("finish_reason", finish);
        out.set("usage", usage(r));
        if (citations != null) out.putObject("enclave").set("citations", citations);
        sendJson(ctx, 200, out);
    }

    private void finishStream(HttpServerResponse response, boolean chat, String id, long created, String modelId,
                              CompletionParams params, GenerationResult r, Throwable failure, AtomicBoolean roleSent,
                              List<String> bufferedTools, ArrayNode citations) {
        if (response.closed() || response.ended()) return;
        String object = chat ? "chat.completion.chunk" : "text_completion";
        if (chat && failure == null && r != null) sendRoleOnce(response, roleSent, object, id, created, modelId);
        if (failure != null || r == null) {
            LOG.error("streamed generation failed", failure);
            ObjectNode err = json.createObjectNode();
            err.putObject("error").put("message", "generation failed").put("type", "server_error");
            sendEvent(response, err);
            response.end("data: [DONE]\n\n");
            return;
        }
        String finish = r.finishReason().openAiName;
        if (bufferedTools != null) {
            // the whole answer was held back: send it as one content delta, or as tool-call deltas
            ToolCallParser.Parsed parsed = ToolCallParser.parse(r.text(), bufferedTools);
            ObjectNode chunk = envelope(object, id, created, modelId);
            ObjectNode delta = chunk.putArray("choices").addObject().put("index", 0).putObject("delta");
            if (!parsed.calls().isEmpty()) {
                if (!parsed.content().isEmpty()) delta.put("content", parsed.content());
                delta.set("tool_calls", toolCalls(parsed.calls(), true));
                finish = "tool_calls";
            } else {
                delta.put("content", r.text());
            }
            ((ObjectNode) chunk.get("choices").get(0)).putNull("logprobs").putNull("finish_reason");
            sendEvent(response, chunk);
        }
        sendEvent(response, choiceChunk(object, id, created, modelId, 0, false, chat ? null : "", finish));
        endStream(response, object, id, created, modelId, params.includeUsage() ? usage(r) : null, citations);
    }

    /**
     * The end of every stream: the usage chunk when asked for, then (grounded chat) the sources the answer was given,
     * each as a chunk with no choices, then [DONE].
     */
    private void endStream(HttpServerResponse response, String object, String id, long created, String modelId,
                           ObjectNode usage, ArrayNode citations) {
        if (usage != null) {
            ObjectNode u = envelope(object, id, created, modelId);
            u.putArray("choices");
            u.set("usage", usage);
            sendEvent(response, u);
        }
        if (citations != null) {
            ObjectNode cit = envelope(object, id, created, modelId);
            cit.putArray("choices");
            cit.putObject("enclave").set("citations", citations);
            sendEvent(response, cit);
        }
        response.end("data: [DONE]\n\n");
    }

    /** OpenAI's tool_calls array; in stream deltas each call also carries its index. */
    private com.fasterxml.jackson.databind.node.ArrayNode toolCalls(List<ToolCallParser.Call> calls, boolean delta) {
        var arr = json.createArrayNode();
        for (int i = 0; i < calls.size(); i++) {
            ObjectNode c = arr.addObject();
            if (delta) c.put("index", i);
            c.put("id", "call_" + randomId().substring(0, 16)).put("type", "function");
            c.putObject("function").put("name", calls.get(i).name()).put("arguments", calls.get(i).argumentsJson());
        }
        return arr;
    }

    /** OpenAI's logprobs object: chat ({@code content} entries with bytes and alternatives) or legacy completions. */
    private ObjectNode logprobs(boolean chat, List<TokenLogprobs> lps, Tokenizer tok) {
        ObjectNode out = json.createObjectNode();
        if (chat) {
            var content = out.putArray("content");
            for (TokenLogprobs lp : lps) {
                ObjectNode e = tokenEntry(content.addObject(), tok, lp.token(), lp.logprob());
                var top = e.putArray("top_logprobs");
                for (int i = 0; i < lp.topTokens().length; i++) tokenEntry(top.addObject(), tok, lp.topTokens()[i], lp.topLogprobs()[i]);
            }
            out.putNull("refusal");
        } else {
            var tokens = out.putArray("tokens");
            var tokenLogprobs = out.putArray("token_logprobs");
            var top = out.putArray("top_logprobs");
            var offsets = out.putArray("text_offset");
            int offset = 0;
            for (TokenLogprobs lp : lps) {
                String piece = new String(tok.pieceBytes(lp.token(), false), java.nio.charset.StandardCharsets.UTF_8);
                tokens.add(piece);
                tokenLogprobs.add(lp.logprob());
                ObjectNode alternatives = top.addObject();
                for (int i = 0; i < lp.topTokens().length; i++) {
                    alternatives.put(new String(tok.pieceBytes(lp.topTokens()[i], false), java.nio.charset.StandardCharsets.UTF_8), lp.topLogprobs()[i]);
                }
                offsets.add(offset);
                offset += piece.length();
            }
        }
        return out;
    }

    private static ObjectNode tokenEntry(ObjectNode e, Tokenizer tok, int token, float logprob) {
        byte[] bytes = tok.pieceBytes(token, false);
        e.put("token", new String(bytes, java.nio.charset.StandardCharsets.UTF_8)).put("logprob", logprob);
        var b = e.putArray("bytes");
        for (byte x : bytes) b.add(x & 0xFF);
        return e;
    }

    /** The first chat chunk carries the assistant role; it is written once, before any content. */
    private void sendRoleOnce(HttpServerResponse response, AtomicBoolean sent, String object, String id, long created,
                              String modelId) {
        synchronized (sent) {
            if (sent.get()) return;
            ObjectNode first = envelope(object, id, created, modelId);
            ObjectNode c = first.putArray("choices").addObject().put("index", 0);
            c.putObject("delta").put("role", "assistant").put("content", "");
            c.putNull("logprobs");
            c.putNull("finish_reason");
            sendEvent(response, first);
            sent.set(true);
        }
    }

    // ---- plumbing ----

    private JsonNode parseBody(RoutingContext ctx) {
        String ct = ctx.request().getHeader("Content-Type");
        if (ct != null && !ct.toLowerCase().startsWith("application/json")) {
            throw new ApiException(415, "invalid_request_error", null, null, "Content-Type must be application/json");
        }
        if (ctx.body() == null || ctx.body().length() == 0) {
            throw ApiException.invalid(null, "the request body is empty; expected a JSON object");
        }
        try {
            JsonNode node = json.readTree(ctx.body().buffer().getBytes());
            if (node == null || !node.isObject()) {
                throw ApiException.invalid(null, "the request body must be a JSON object");
            }
            return node;
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "malformed JSON in request body: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw ApiException.invalid(null, "unreadable request body");
        }
    }

    private ObjectNode envelope(String object, String id, long created, String modelId) {
        return json.createObjectNode()
                .put("id", id)
                .put("object", object)
                .put("created", created)
                .put("model", modelId)
                .put("system_fingerprint", "enclave");
    }

    private ObjectNode usage(GenerationResult r) {
        return json.createObjectNode()
                .put("prompt_tokens", r.promptTokens())
                .put("completion_tokens", r.completionTokens())
                .put("total_tokens", r.promptTokens() + r.completionTokens());
    }

    private void sendEvent(HttpServerResponse response, ObjectNode event) {
        try {
            response.write("data: " + json.writeValueAsString(event) + "\n\n");
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private void sendJson(RoutingContext ctx, int status, JsonNode body) {
        if (ctx.response().ended() || ctx.response().closed()) return;
        try {
            ctx.response().setStatusCode(status)
                    .putHeader("Content-Type", "application/json")
                    .end(json.writeValueAsString(body));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private void sendError(RoutingContext ctx, ApiException e) {
        if (e.status == 429) ctx.response().putHeader("Retry-After", "1");
        ObjectNode err = json.createObjectNode();
        ObjectNode inner = err.putObject("error").put("message", e.getMessage()).put("type", e.type);
        if (e.param != null) inner.put("param", e.param); else inner.putNull("param");
        if (e.code != null) inner.put("code", e.code); else inner.putNull("code");
        sendJson(ctx, e.status, err);
    }

    private void failure(RoutingContext ctx) {
        int status = ctx.statusCode();
        if (status == 413) {
            sendError(ctx, new ApiException(413, "invalid_request_error", "request_too_large", null,
                    "the request body is larger than " + MAX_BODY_BYTES + " bytes"));
        } else if (ctx.failure() instanceof ContextLengthExceededException c) {
            sendError(ctx, ApiException.contextExceeded(c.requested, 0, c.contextLength));
        } else if (status >= 400 && status < 500) {
            sendError(ctx, new ApiException(status, "invalid_request_error", null, null, "request failed with status " + status));
        } else {
            LOG.error("request failed", ctx.failure());
            sendError(ctx, new ApiException(500, "server_error", null, null, "internal error"));
        }
    }

    private static String randomId() {
        byte[] b = new byte[12];
        IDS.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

}
