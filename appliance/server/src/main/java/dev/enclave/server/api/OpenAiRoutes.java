package dev.enclave.server.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.runtime.generate.ContextLengthExceededException;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.generate.TokenLogprobs;
import java.util.ArrayList;
import java.util.List;
import dev.enclave.runtime.sampling.Sampler;
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
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * The OpenAI-compatible API: {@code /v1/models}, {@code /v1/completions}, {@code /v1/chat/completions}, with
 * Server-Sent Events streaming ending in {@code data: [DONE]} and OpenAI's error JSON. Handlers parse and
 * validate on the event loop and hand generation to the model's worker threads, which stream tokens straight
 * into the response; a client that disconnects cancels its generation.
 */
@ApplicationScoped
public class OpenAiRoutes {

    private static final Logger LOG = Logger.getLogger(OpenAiRoutes.class);
    static final long MAX_BODY_BYTES = 8L * 1024 * 1024;
    private static final SecureRandom IDS = new SecureRandom();

    private final ModelService models;
    private final ObjectMapper json;
    private final Grounding grounding;
    private final dev.enclave.server.security.SecurityService security;

    public OpenAiRoutes(ModelService models, ObjectMapper json, Grounding grounding,
                        dev.enclave.server.security.SecurityService security) {
        this.models = models;
        this.json = json;
        this.grounding = grounding;
        this.security = security;
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
        body.putArray("data").add(modelObject());
        sendJson(ctx, 200, body);
    }

    private void getModel(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        if (!models.modelId().equals(id)) {
            sendError(ctx, ApiException.modelNotFound(id));
            return;
        }
        sendJson(ctx, 200, modelObject());
    }

    private ObjectNode modelObject() {
        return json.createObjectNode()
                .put("id", models.modelId())
                .put("object", "model")
                .put("created", models.createdEpochSeconds())
                .put("owned_by", "enclave");
    }

    // ---- embeddings (pooled from the loaded model until the RAG embedder lands) ----

    private void embeddings(RoutingContext ctx) {
        try {
            JsonNode body = parseBody(ctx);
            JsonNode model = body.get("model");
            if (model != null && model.isTextual() && model.asText().equals(grounding.embedderId())) {
                sendJson(ctx, 200, grounding.embeddings(body.get("input")));
                return;
            }
            if (model != null && model.isTextual() && !models.modelId().equals(model.asText())) throw ApiException.modelNotFound(model.asText());
            JsonNode input = body.get("input");
            java.util.List<int[]> texts = new java.util.ArrayList<>();
            Tokenizer tok = models.model().tokenizer();
            if (input != null && input.isTextual()) {
                texts.add(tok.encode(input.asText(), true, false));
            } else if (input != null && input.isArray() && !input.isEmpty() && input.size() <= 256) {
                for (JsonNode e : input) {
                    if (!e.isTextual()) throw ApiException.invalid("input", "input must be a string or an array of strings");
                    texts.add(tok.encode(e.asText(), true, false));
                }
            } else {
                throw ApiException.invalid("input", "input must be a string or an array of 1 to 256 strings");
            }
            int ctxLen = models.model().config().contextLength();
            ObjectNode out = json.createObjectNode().put("object", "list").put("model", models.modelId());
            var data = out.putArray("data");
            int total = 0;
            for (int i = 0; i < texts.size(); i++) {
                int[] t = texts.get(i);
                if (t.length > ctxLen) throw contextExceeded(t.length, 0, ctxLen);
                total += t.length;
                ObjectNode item = data.addObject().put("object", "embedding").put("index", i);
                var vec = item.putArray("embedding");
                for (float v : models.model().embed(t)) vec.add(v);
            }
            out.putObject("usage").put("prompt_tokens", total).put("total_tokens", total);
            sendJson(ctx, 200, out);
        } catch (ApiException e) {
            sendError(ctx, e);
        }
    }

    // ---- completions ----

    private void completion(RoutingContext ctx, boolean chat) {
        final JsonNode parsed;
        try {
            parsed = parseBody(ctx);
        } catch (ApiException e) {
            sendError(ctx, e);
            return;
        }
        JsonNode ext = parsed.get("enclave");
        if (chat && ext != null && !ext.isNull()) {
            // grounded chat: retrieval blocks (Lucene, ONNX), so it runs on a worker, then generation goes on as usual
            ctx.vertx().<Grounding.Grounded>executeBlocking(() -> grounding.ground((ObjectNode) parsed,
                            dev.enclave.server.rag.RagRoutes.principal(ctx)), false)
                    .onComplete(ar -> {
                        if (ar.failed()) {
                            Throwable f = ar.cause();
                            if (f instanceof ApiException a) sendError(ctx, a);
                            else if (f instanceof dev.enclave.rag.retrieve.HybridRetriever.AccessDeniedException d)
                                sendError(ctx, new ApiException(403, "permission_error", null, "enclave", d.getMessage()));
                            else if (f instanceof IllegalArgumentException i)
                                sendError(ctx, ApiException.invalid("enclave", i.getMessage()));
                            else {
                                LOG.error("retrieval failed", f);
                                sendError(ctx, new ApiException(500, "server_error", null, null, "retrieval failed: " + f.getMessage()));
                            }
                        } else {
                            generate(ctx, chat, ar.result().body(), ar.result().citations());
                        }
                    });
            return;
        }
        generate(ctx, chat, parsed, null);
    }

    private void generate(RoutingContext ctx, boolean chat, JsonNode body, com.fasterxml.jackson.databind.node.ArrayNode citations) {
        final String id = (chat ? "chatcmpl-" : "cmpl-") + randomId();
        final long created = System.currentTimeMillis() / 1000;
        final CompletionParams params;
        final GenerationRequest request;
        final List<String> toolNames = new ArrayList<>();
        final AnswerTokens answers = models.answerTokens();
        final Tokenizer answerTokenizer = models.model().tokenizer();
        try {
            JsonNode model = body.get("model");
            if (model != null && !model.isNull()) {
                if (!model.isTextual()) throw ApiException.invalid("model", "model must be a string");
                if (!models.modelId().equals(model.asText())) throw ApiException.modelNotFound(model.asText());
            }
            Tokenizer tok = models.model().tokenizer();
            int ctxLen = models.model().config().contextLength();
            JsonNode tools = body.get("tools");
            boolean toolsOff = "none".equals(body.path("tool_choice").asText(""));
            if (chat && tools != null && !tools.isNull() && !toolsOff) {
                if (!tools.isArray()) throw ApiException.invalid("tools", "tools must be an array");
                for (JsonNode t : tools) {
                    JsonNode fn = t.path("function").path("name");
                    if (!fn.isTextual()) throw ApiException.invalid("tools", "each tool needs function.name");
                    toolNames.add(fn.asText());
                }
            }
            int[] prompt = chat ? ChatPrompt.tokens(body.get("messages"), toolsOff ? null : tools, models.chatTemplate(), tok, answers)
                    : promptTokens(body.get("prompt"), tok);
            if (prompt.length >= ctxLen) {
                throw contextExceeded(prompt.length, 1, ctxLen);
            }
            params = CompletionParams.parse(body, chat ? ctxLen - prompt.length : 16, ctxLen, tok.vocabularySize(), chat);
            if (prompt.length + params.maxTokens() > ctxLen) {
                throw contextExceeded(prompt.length, params.maxTokens(), ctxLen);
            }
            if (params.n() > 1) {
                if (!toolNames.isEmpty()) throw ApiException.invalid("n", "n > 1 cannot be combined with tools");
                generateMany(ctx, chat, body, params, prompt, id, created, tok, citations);
                return;
            }
            request = new GenerationRequest(prompt, params.maxTokens(),
                    params.sampler(params.sampling().seed(), tok),
                    params.stop(), false, params.topLogprobs());
        } catch (ApiException e) {
            sendError(ctx, e);
            return;
        }

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
        ContinuousBatchScheduler.Handle handle;
        try {
            handle = models.submit(request, new TokenListener() {
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
                        sendRoleOnce(response, roleSent, object, id, created);
                        ObjectNode chunk = envelope(object, id, created);
                        ObjectNode c = chunk.putArray("choices").addObject().put("index", 0);
                        if (chat) c.putObject("delta").put("content", text);
                        else c.put("text", text);
                        if (params.topLogprobs() >= 0) c.set("logprobs", logprobs(chat, pending));
                        else c.putNull("logprobs");
                        c.putNull("finish_reason");
                        sendEvent(response, chunk);
                        pending.clear();
                    }
                    return true;
                }
            });
        } catch (QueueFullException e) {
            response.setChunked(false).headers().remove("Content-Type");
            response.putHeader("Retry-After", "1");
            sendError(ctx, new ApiException(429, "rate_limit_error", "queue_full", null,
                    "The server is busy: too many requests are waiting. Retry shortly."));
            return;
        } catch (ContextLengthExceededException e) {
            response.setChunked(false).headers().remove("Content-Type");
            sendError(ctx, contextExceeded(e.requested, 0, e.contextLength));
            return;
        }
        response.closeHandler(v -> handle.cancel());
        var caller = dev.enclave.server.security.AuthHandler.caller(ctx);
        String ip = dev.enclave.server.security.AuthHandler.ip(ctx);
        handle.result().whenComplete((r, failure) -> {
            if (chat && r != null && toolNames.isEmpty() && citations == null) answers.record(r, answerTokenizer);
            StringBuilder detail = new StringBuilder();
            if (r != null) detail.append("prompt_tokens=").append(r.promptTokens()).append(" completion_tokens=").append(r.completionTokens())
                    .append(" finish=").append(r.finishReason().openAiName);
            else detail.append("failed");
            if (citations != null) {
                java.util.TreeSet<String> cols = new java.util.TreeSet<>();
                citations.forEach(c -> cols.add(c.path("collection").asText()));
                detail.append(" grounded collections=").append(cols).append(" sources=").append(citations.size());
            }
            if (caller.apiKeyId() != null) detail.append(" key=").append(caller.apiKeyId());
            if (security.logPrompts()) detail.append(" prompt=").append(chat ? body.path("messages") : body.path("prompt"));
            security.audit(caller.user(), chat ? "inference.chat" : "inference.completion", models.modelId(), detail.toString(), ip);
            if (params.stream()) {
                finishStream(response, chat, id, created, params, r, failure, roleSent, buffered ? toolNames : null, citations);
            } else {
                respond(ctx, chat, id, created, r, failure, params.topLogprobs() >= 0 ? all : null, toolNames, citations);
            }
        });
    }

    /**
     * n > 1: n choices of one prompt. The scheduler reads the prompt once and forks it (copy-on-write KV blocks); the
     * choices stream interleaved, each chunk carrying its choice index; [DONE] follows the last one.
     */
    private void generateMany(RoutingContext ctx, boolean chat, JsonNode body, CompletionParams params, int[] prompt,
                              String id, long created, Tokenizer tok, com.fasterxml.jackson.databind.node.ArrayNode citations) {
        int n = params.n();
        HttpServerResponse response = ctx.response();
        String object = chat ? "chat.completion.chunk" : "text_completion";
        boolean stream = params.stream();
        if (stream) {
            response.setStatusCode(200).putHeader("Content-Type", "text/event-stream; charset=utf-8")
                    .putHeader("Cache-Control", "no-cache").putHeader("X-Accel-Buffering", "no").setChunked(true);
        }
        List<GenerationRequest> requests = new ArrayList<>();
        List<TokenListener> listeners = new ArrayList<>();
        boolean[] roleSent = new boolean[n];
        List<List<TokenLogprobs>> logprobs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Sampler sampler = params.sampler(params.sampling().seed() + i, tok);
            requests.add(new GenerationRequest(prompt, params.maxTokens(), sampler, params.stop(), false, params.topLogprobs()));
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
                            sendEvent(response, choiceChunk(object, id, created, index, true, null, null));
                        }
                        ObjectNode chunk = choiceChunk(object, id, created, index, false, text, null);
                        ObjectNode c = (ObjectNode) chunk.get("choices").get(0);
                        if (params.topLogprobs() >= 0) {
                            c.set("logprobs", logprobs(chat, mine));
                            mine.clear();
                        }
                        sendEvent(response, chunk);
                    }
                    return true;
                }
            });
        }
        List<ContinuousBatchScheduler.Handle> handles;
        try {
            handles = models.submitAll(requests, listeners);
        } catch (QueueFullException e) {
            response.setChunked(false).headers().remove("Content-Type");
            response.putHeader("Retry-After", "1");
            sendError(ctx, new ApiException(429, "rate_limit_error", "queue_full", null,
                    "The server is busy: too many requests are waiting. Retry shortly."));
            return;
        }
        response.closeHandler(v -> handles.forEach(ContinuousBatchScheduler.Handle::cancel));
        var caller = dev.enclave.server.security.AuthHandler.caller(ctx);
        String ip = dev.enclave.server.security.AuthHandler.ip(ctx);
        java.util.concurrent.CompletableFuture<?>[] all = handles.stream().map(ContinuousBatchScheduler.Handle::result)
                .toArray(java.util.concurrent.CompletableFuture[]::new);
        java.util.concurrent.CompletableFuture.allOf(all).whenComplete((v, failure) -> {
            if (response.closed() || response.ended()) return;
            if (failure != null) {
                LOG.error("generation failed", failure);
                if (stream) {
                    ObjectNode err = json.createObjectNode();
                    err.putObject("error").put("message", "generation failed: " + failure.getMessage()).put("type", "server_error");
                    sendEvent(response, err);
                    response.end("data: [DONE]\n\n");
                } else {
                    sendError(ctx, new ApiException(500, "server_error", null, null, "generation failed: " + failure.getMessage()));
                }
                return;
            }
            int completionTokens = 0;
            List<GenerationResult> results = new ArrayList<>();
            for (var h : handles) {
                GenerationResult r = h.result().join();
                results.add(r);
                completionTokens += r.completionTokens();
            }
            security.audit(caller.user(), chat ? "inference.chat" : "inference.completion", models.modelId(),
                    "n=" + n + " prompt_tokens=" + prompt.length + " completion_tokens=" + completionTokens, ip);
            ObjectNode usage = json.createObjectNode().put("prompt_tokens", prompt.length)
                    .put("completion_tokens", completionTokens).put("total_tokens", prompt.length + completionTokens);
            if (stream) {
                for (int i = 0; i < n; i++) {
                    if (chat && !roleSent[i]) sendEvent(response, choiceChunk(object, id, created, i, true, null, null));
                    sendEvent(response, choiceChunk(object, id, created, i, false, chat ? null : "", results.get(i).finishReason().openAiName));
                }
                endStream(response, object, id, created, params.includeUsage() ? usage : null, citations);
            } else {
                ObjectNode out = envelope(chat ? "chat.completion" : "text_completion", id, created);
                var choices = out.putArray("choices");
                for (int i = 0; i < n; i++) {
                    ObjectNode c = choices.addObject().put("index", i);
                    if (chat) c.putObject("message").put("role", "assistant").put("content", results.get(i).text());
                    else c.put("text", results.get(i).text());
                    if (params.topLogprobs() >= 0) c.set("logprobs", logprobs(chat, logprobs.get(i)));
                    else c.putNull("logprobs");
                    c.put("finish_reason", results.get(i).finishReason().openAiName);
                }
                out.set("usage", usage);
                if (citations != null) out.putObject("enclave").set("citations", citations);
                sendJson(ctx, 200, out);
            }
        });
    }

    /** One streamed chunk of choice {@code index}: the role opener, a piece of text, or the final finish reason. */
    private ObjectNode choiceChunk(String object, String id, long created, int index, boolean role, String text, String finish) {
        ObjectNode chunk = envelope(object, id, created);
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

    private void respond(RoutingContext ctx, boolean chat, String id, long created, GenerationResult r, Throwable failure,
                         List<TokenLogprobs> logprobs, List<String> toolNames,
                         com.fasterxml.jackson.databind.node.ArrayNode citations) {
        if (failure != null || r == null) {
            LOG.error("generation failed", failure);
            sendError(ctx, new ApiException(500, "server_error", null, null, "generation failed: " + (failure == null ? "no result" : failure.getMessage())));
            return;
        }
        ObjectNode out = envelope(chat ? "chat.completion" : "text_completion", id, created);
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
        if (logprobs != null) choice.set("logprobs", logprobs(chat, logprobs));
        else choice.putNull("logprobs");
        choice.put("finish_reason", finish);
        out.set("usage", usage(r));
        if (citations != null) out.putObject("enclave").set("citations", citations);
        sendJson(ctx, 200, out);
    }

    private void finishStream(HttpServerResponse response, boolean chat, String id, long created, CompletionParams params,
                              GenerationResult r, Throwable failure, AtomicBoolean roleSent, List<String> bufferedTools,
                              com.fasterxml.jackson.databind.node.ArrayNode citations) {
        if (response.closed() || response.ended()) return;
        String object = chat ? "chat.completion.chunk" : "text_completion";
        if (chat && failure == null && r != null) sendRoleOnce(response, roleSent, object, id, created);
        if (failure != null || r == null) {
            LOG.error("streamed generation failed", failure);
            ObjectNode err = json.createObjectNode();
            err.putObject("error").put("message", "generation failed: " + (failure == null ? "no result" : failure.getMessage()))
                    .put("type", "server_error");
            sendEvent(response, err);
            response.end("data: [DONE]\n\n");
            return;
        }
        String finish = r.finishReason().openAiName;
        if (bufferedTools != null) {
            // the whole answer was held back: send it as one content delta, or as tool-call deltas
            ToolCallParser.Parsed parsed = ToolCallParser.parse(r.text(), bufferedTools);
            ObjectNode chunk = envelope(object, id, created);
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
        sendEvent(response, choiceChunk(object, id, created, 0, false, chat ? null : "", finish));
        endStream(response, object, id, created, params.includeUsage() ? usage(r) : null, citations);
    }

    /**
     * The end of every stream: the usage chunk when asked for, then (grounded chat) the sources the answer was given,
     * each as a chunk with no choices, then [DONE].
     */
    private void endStream(HttpServerResponse response, String object, String id, long created, ObjectNode usage,
                           com.fasterxml.jackson.databind.node.ArrayNode citations) {
        if (usage != null) {
            ObjectNode u = envelope(object, id, created);
            u.putArray("choices");
            u.set("usage", usage);
            sendEvent(response, u);
        }
        if (citations != null) {
            ObjectNode cit = envelope(object, id, created);
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
    private ObjectNode logprobs(boolean chat, List<TokenLogprobs> lps) {
        Tokenizer tok = models.model().tokenizer();
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
    private void sendRoleOnce(HttpServerResponse response, AtomicBoolean sent, String object, String id, long created) {
        synchronized (sent) {
            if (sent.get()) return;
            ObjectNode first = envelope(object, id, created);
            ObjectNode c = first.putArray("choices").addObject().put("index", 0);
            c.putObject("delta").put("role", "assistant").put("content", "");
            c.putNull("logprobs");
            c.putNull("finish_reason");
            sendEvent(response, first);
            sent.set(true);
        }
    }

    private int[] promptTokens(JsonNode prompt, Tokenizer tok) {
        if (prompt == null || prompt.isNull()) {
            throw ApiException.invalid("prompt", "prompt is required");
        }
        if (prompt.isTextual()) {
            return tok.encode(prompt.asText(), true, false);
        }
        if (prompt.isArray() && prompt.size() == 1 && prompt.get(0).isTextual()) {
            return tok.encode(prompt.get(0).asText(), true, false);
        }
        if (prompt.isArray() && !prompt.isEmpty() && prompt.get(0).isIntegralNumber()) {
            int[] ids = new int[prompt.size()];
            for (int i = 0; i < ids.length; i++) {
                JsonNode t = prompt.get(i);
                if (!t.isIntegralNumber() || t.asLong() < 0 || t.asLong() >= tok.vocabularySize()) {
                    throw ApiException.invalid("prompt", "prompt token " + i + " is not a token id in [0, " + tok.vocabularySize() + ")");
                }
                ids[i] = t.asInt();
            }
            return ids;
        }
        if (prompt.isArray() && prompt.size() > 1) {
            throw ApiException.invalid("prompt", "batched prompts are not supported; send one prompt per request");
        }
        throw ApiException.invalid("prompt", "prompt must be a string or an array of token ids");
    }

    private static ApiException contextExceeded(int promptTokens, int maxTokens, int ctxLen) {
        return new ApiException(400, "invalid_request_error", "context_length_exceeded", "messages",
                "This model's maximum context length is " + ctxLen + " tokens. However, you requested "
                        + (promptTokens + maxTokens) + " tokens (" + promptTokens + " in the prompt, " + maxTokens
                        + " for the completion). Please reduce the prompt or the completion length.");
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

    private ObjectNode envelope(String object, String id, long created) {
        return json.createObjectNode()
                .put("id", id)
                .put("object", object)
                .put("created", created)
                .put("model", models.modelId())
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
            sendError(ctx, contextExceeded(c.requested, 0, c.contextLength));
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
