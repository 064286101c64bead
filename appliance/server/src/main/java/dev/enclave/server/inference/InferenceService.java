package dev.enclave.server.inference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.runtime.generate.ContextLengthExceededException;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.serve.GenerationHandle;
import dev.enclave.runtime.serve.QueueFullException;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.server.model.ModelService;
import dev.enclave.server.model.ServedModel;
import dev.enclave.server.security.Caller;
import dev.enclave.server.security.SecurityService;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

/**
 * The one inference pipeline behind every protocol (OpenAI, Ollama, the panel's chat, which speaks OpenAI). For
 * each request it takes one snapshot of the served model, validates every field with one table
 * ({@link CompletionParams}), grounds, builds the prompt once, checks the context, admits through the scheduler's
 * queue (429 when full, embeddings too), audits the inference or the refusal, and records answer tokens. Adapters
 * only translate JSON and stream: they call {@link #prepare} off the event loop, then {@link #start} with their
 * token listeners, and cancel the returned generation when their client disconnects.
 */
@ApplicationScoped
public class InferenceService {

    public enum Kind {
        COMPLETION("inference.completion"), CHAT("inference.chat");

        final String auditAction;

        Kind(String auditAction) {
            this.auditAction = auditAction;
        }
    }

    /**
     * A generating request in OpenAI's field names. {@code defaultMaxTokens} is the answer length when the request
     * gives none (-1: the rest of the context); {@code clampMaxTokens} shortens a longer one to what the context
     * holds instead of refusing it (Ollama's {@code num_predict} behaves so).
     */
    public record Request(Kind kind, String protocol, ObjectNode body, Caller caller, String ip, int defaultMaxTokens,
                          boolean clampMaxTokens) {
    }

    /** A request that passed every check: what it will run on and with. */
    public record Prepared(Request request, ServedModel model, int[] prompt, CompletionParams params, ArrayNode citations,
                           List<String> toolNames) {

        public boolean chat() {
            return request.kind == Kind.CHAT;
        }

        public Tokenizer tokenizer() {
            return model.tokenizer();
        }
    }

    /** A running generation (one sequence per choice). */
    public static final class Generation {
        private final List<? extends GenerationHandle> handles;
        private final CompletableFuture<List<GenerationResult>> results;

        Generation(List<? extends GenerationHandle> handles, CompletableFuture<List<GenerationResult>> results) {
            this.handles = handles;
            this.results = results;
        }

        /** Stops every choice at the next step and frees its KV blocks (the client went away). */
        public void cancel() {
            handles.forEach(GenerationHandle::cancel);
        }

        /** The choices' results in order, after the audit entry is written. */
        public CompletableFuture<List<GenerationResult>> results() {
            return results;
        }
    }

    /** An embeddings request: one string or 1 to {@value #MAX_INPUTS} strings. */
    public record EmbedRequest(String protocol, String model, JsonNode input, Caller caller, String ip, BooleanSupplier cancelled) {
    }

    public record Embeddings(String model, List<float[]> vectors, int promptTokens) {
    }

    /** The client of an embeddings request went away: nothing is sent. */
    public static final class Cancelled extends RuntimeException {
        Cancelled() {
            super("cancelled by the client", null, false, false);
        }
    }

    static final int MAX_INPUTS = 256;
    /** Texts embedded between two looks at whether the client is still there. */
    private static final int EMBED_BATCH = 16;

    private final ModelService models;
    private final Grounding grounding;
    private final SecurityService security;
    private final Semaphore embedding;
    private final AtomicInteger embedWaiting = new AtomicInteger();

    public InferenceService(ModelService models, Grounding grounding, SecurityService security) {
        this.models = models;
        this.grounding = grounding;
        this.security = security;
        this.embedding = new Semaphore(Math.max(1, models.maxActive()), true);
    }

    /** The model served now (for adapters' listings); requests use the snapshot their {@link Prepared} holds. */
    public ServedModel current() {
        return models.current();
    }

    /** Whether {@code requested} names the served model ({@code name} or Ollama's {@code name:latest}). */
    public static boolean names(ServedModel m, String requested) {
        return requested.equals(m.id()) || requested.equals(m.id() + ":latest");
    }

    /**
     * Validates, grounds and tokenizes a generating request; blocking (retrieval, template rendering), so adapters
     * call it off the event loop. A refusal is audited and thrown as an {@link ApiException}.
     */
    public Prepared prepare(Request r) {
        ApiException refusal;
        try {
            return prepareChecked(r);
        } catch (ApiException e) {
            refusal = e;
        } catch (StackOverflowError e) {
            refusal = ApiException.invalid("messages", "the request is nested too deeply to render");
        } catch (IllegalArgumentException e) {
            refusal = ApiException.invalid(null, e.getMessage());
        }
        refused(r.caller, r.ip, r.protocol, r.kind.auditAction, refusal);
        throw refusal;
    }

    private Prepared prepareChecked(Request r) {
        ServedModel m = models.current();
        boolean chat = r.kind == Kind.CHAT;
        ObjectNode body = r.body;
        JsonNode model = body.get("model");
        if (model != null && !model.isNull()) {
            if (!model.isTextual()) throw ApiException.invalid("model", "model must be a string");
            if (!model.asText().isEmpty() && !names(m, model.asText())) throw ApiException.modelNotFound(model.asText());
        }
        Tokenizer tok = m.tokenizer();
        int ctxLen = m.contextLength();
        ArrayNode citations = null;
        JsonNode ext = body.get("enclave");
        if (ext != null && !ext.isNull()) {
            if (!chat) throw ApiException.invalid("enclave", "grounding (enclave.collections) is for chat requests");
            Grounding.Grounded g;
            try {
                g = grounding.ground(m, body, r.caller.principal());
            } catch (ApiException e) {
                throw e;
            } catch (HybridRetriever.AccessDeniedException e) {
                // unknown and unreadable collections answer alike; the server's log tells them apart
                if (e.exists) security.audit(r.caller.user(), "access.denied", "collection/" + e.collection, "grounded chat", r.ip);
                throw ApiException.invalid("enclave", e.getMessage());
            } catch (IllegalArgumentException e) {
                throw ApiException.invalid("enclave", e.getMessage());
            } catch (Exception e) {
                throw new ApiException(500, "server_error", null, null, "retrieval failed: " + e.getMessage());
            }
            body = g.body();
            citations = g.citations();
        }
        List<String> toolNames = new ArrayList<>();
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
        int[] prompt = chat ? ChatPrompt.tokens(body.get("messages"), toolsOff ? null : tools, m.chatTemplate(), tok, m.answers())
                : promptTokens(body.get("prompt"), tok);
        if (prompt.length >= ctxLen) throw ApiException.contextExceeded(prompt.length, 1, ctxLen);
        int rest = ctxLen - prompt.length;
        if (r.clampMaxTokens) {
            JsonNode max = body.get("max_tokens");
            if (max != null && max.isIntegralNumber() && max.canConvertToLong() && max.asLong() > rest) body.put("max_tokens", rest);
        }
        // with the engine's context shift an answer may outgrow the context (the prompt itself may not)
        boolean shifting = models.contextShift();
        CompletionParams params = CompletionParams.parse(body, r.defaultMaxTokens < 0 ? rest : r.defaultMaxTokens, ctxLen,
                shifting ? 16 * ctxLen : ctxLen, tok.vocabularySize(), chat);
        if (shifting ? prompt.length >= ctxLen : prompt.length + params.maxTokens() > ctxLen) {
            throw ApiException.contextExceeded(prompt.length, params.maxTokens(), ctxLen);
        }
        if (params.n() > 1 && !toolNames.isEmpty()) throw ApiException.invalid("n", "n > 1 cannot be combined with tools");
        return new Prepared(r, m, prompt, params, citations, toolNames);
    }

    /**
     * Admits a prepared request: one sequence per listener ({@code params.n()} of them), the prompt read once and
     * forked when there are several. Throws {@link ApiException} 429 when the queue is full (audited).
     */
    public Generation start(Prepared p, List<TokenListener> listeners) {
        if (listeners.size() != p.params.n()) throw new IllegalArgumentException("one listener per choice");
        Request r = p.request;
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < listeners.size(); i++) {
            requests.add(new GenerationRequest(p.prompt, p.params.maxTokens(),
                    p.params.sampler(p.params.sampling().seed() + i, p.tokenizer()), p.params.stop(), false, p.params.topLogprobs()));
        }
        List<? extends GenerationHandle> handles;
        try {
            handles = requests.size() == 1 ? List.of(p.model.submit(requests.get(0), listeners.get(0)))
                    : p.model.submitAll(requests, listeners);
        } catch (QueueFullException | ContextLengthExceededException e) {
            ApiException refusal = e instanceof ContextLengthExceededException c
                    ? ApiException.contextExceeded(c.requested, 0, c.contextLength) : ApiException.busy();
            refused(r.caller, r.ip, r.protocol, r.kind.auditAction, refusal);
            throw refusal;
        }
        CompletableFuture<?>[] each = handles.stream().map(GenerationHandle::result).toArray(CompletableFuture[]::new);
        CompletableFuture<List<GenerationResult>> results = CompletableFuture.allOf(each).handle((v, failure) -> {
            List<GenerationResult> out = new ArrayList<>();
            if (failure == null) for (var h : handles) out.add(h.result().join());
            finished(p, out, failure);
            if (failure != null) throw failure instanceof RuntimeException re ? re : new IllegalStateException(failure);
            return out;
        });
        return new Generation(handles, results);
    }

    /** The audit entry of a finished generation, and the answer kept for the conversation's next turn. */
    private void finished(Prepared p, List<GenerationResult> results, Throwable failure) {
        Request r = p.request;
        if (failure == null && p.chat() && results.size() == 1 && p.toolNames.isEmpty()) {
            GenerationResult res = results.get(0);
            p.model.answers().record(res, p.tokenizer());
        }
        StringBuilder d = new StringBuilder("protocol=").append(r.protocol);
        if (failure != null) {
            d.append(" failed=").append(failure.getClass().getSimpleName());
        } else {
            int completion = 0;
            for (GenerationResult g : results) completion += g.completionTokens();
            d.append(" prompt_tokens=").append(p.prompt.length).append(" completion_tokens=").append(completion);
            if (results.size() == 1) d.append(" finish=").append(results.get(0).finishReason().openAiName);
            else d.append(" n=").append(results.size());
        }
        if (p.citations != null) {
            TreeSet<String> cols = new TreeSet<>();
            p.citations.forEach(c -> cols.add(c.path("collection").asText()));
            d.append(" grounded collections=").append(cols).append(" sources=").append(p.citations.size());
        }
        if (r.caller.apiKeyId() != null) d.append(" key=").append(r.caller.apiKeyId());
        if (security.logPrompts()) d.append(" prompt=").append(p.chat() ? r.body.path("messages") : r.body.path("prompt"));
        security.audit(r.caller.user(), r.kind.auditAction, p.model.id(), d.toString(), r.ip);
    }

    /**
     * Embeddings from the document embedder (when {@code model} names it) or pooled from the served model; admitted
     * like generations (429 when as many wait as the generation queue holds), stopped between batches of texts when
     * the client goes away; blocking. Audited either way.
     */
    public Embeddings embed(EmbedRequest r) {
        try {
            return embedChecked(r);
        } catch (ApiException e) {
            refused(r.caller, r.ip, r.protocol, "inference.embeddings", e);
            throw e;
        } catch (Cancelled e) {
            security.audit(r.caller.user(), "inference.embeddings", r.model == null ? "" : r.model,
                    "protocol=" + r.protocol + " cancelled", r.ip);
            throw e;
        }
    }

    private Embeddings embedChecked(EmbedRequest r) {
        List<String> texts = new ArrayList<>();
        JsonNode input = r.input;
        if (input != null && input.isTextual()) {
            texts.add(input.asText());
        } else if (input != null && input.isArray() && !input.isEmpty() && input.size() <= MAX_INPUTS) {
            for (JsonNode e : input) {
                if (!e.isTextual()) throw ApiException.invalid("input", "input must be a string or an array of 1 to " + MAX_INPUTS + " strings");
                texts.add(e.asText());
            }
        } else {
            throw ApiException.invalid("input", "input must be a string or an array of 1 to " + MAX_INPUTS + " strings");
        }
        boolean documents = r.model != null && r.model.equals(grounding.embedderId());
        ServedModel m = models.current();
        if (!documents && r.model != null && !r.model.isEmpty() && !names(m, r.model)) throw ApiException.modelNotFound(r.model);
        // tokenize and check lengths before taking a slot
        List<int[]> ids = new ArrayList<>();
        if (!documents) {
            for (String t : texts) {
                int[] tokens = m.tokenizer().encode(t, true, false);
                if (tokens.length > m.contextLength()) throw ApiException.contextExceeded(tokens.length, 0, m.contextLength());
                ids.add(tokens);
            }
        }
        admitEmbedding(m, r.cancelled);
        try {
            List<float[]> vectors = new ArrayList<>();
            int tokens = 0;
            String name;
            if (documents) {
                var embedder = grounding.documentEmbedder();
                name = embedder.name();
                for (int i = 0; i < texts.size(); i += EMBED_BATCH) {
                    if (r.cancelled.getAsBoolean()) throw new Cancelled();
                    vectors.addAll(embedder.embedDocuments(texts.subList(i, Math.min(texts.size(), i + EMBED_BATCH))));
                }
                for (String t : texts) tokens += Math.min(embedder.maxTokens(), embedder.countTokens(t) + 2);
            } else {
                name = m.id();
                for (int[] t : ids) {
                    if (r.cancelled.getAsBoolean()) throw new Cancelled();
                    vectors.add(m.model().embed(t));
                    tokens += t.length;
                }
            }
            security.audit(r.caller.user(), "inference.embeddings", name,
                    "protocol=" + r.protocol + " inputs=" + texts.size() + " prompt_tokens=" + tokens
                            + (r.caller.apiKeyId() != null ? " key=" + r.caller.apiKeyId() : ""), r.ip);
            return new Embeddings(name, vectors, tokens);
        } finally {
            embedding.release();
        }
    }

    /**
     * Takes one of the embedding slots (as many as sequences decode at once), waiting in a bounded line; refused
     * like a generation when the scheduler's queue is already full, since both compete for the same cores.
     */
    private void admitEmbedding(ServedModel m, BooleanSupplier cancelled) {
        if (m.engine().metrics().queued() >= models.maxQueue()) throw ApiException.busy();
        if (embedding.tryAcquire()) return;
        if (embedWaiting.incrementAndGet() > models.maxQueue()) {
            embedWaiting.decrementAndGet();
            throw ApiException.busy();
        }
        try {
            while (!embedding.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                if (cancelled.getAsBoolean()) throw new Cancelled();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Cancelled();
        } finally {
            embedWaiting.decrementAndGet();
        }
    }

    /**
     * A request the adapter could not even hand over (a body that is not a JSON object, fields its protocol spells
     * wrongly): audited here like every other refusal.
     */
    public void refusedUnread(String protocol, String action, Caller caller, String ip, ApiException e) {
        refused(caller, ip, protocol, action, e);
    }

    /** Every refusal is audited, whichever protocol and whatever the reason. */
    private void refused(Caller caller, String ip, String protocol, String action, ApiException e) {
        String reason = e.getMessage() == null ? "" : e.getMessage();
        if (reason.length() > 200) reason = reason.substring(0, 200) + "…";
        security.audit(caller.user(), "inference.refused", action,
                "protocol=" + protocol + " status=" + e.status + (e.code != null ? " code=" + e.code : "") + " reason=" + reason
                        + (caller.apiKeyId() != null ? " key=" + caller.apiKeyId() : ""), ip);
    }

    static int[] promptTokens(JsonNode prompt, Tokenizer tok) {
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
}
