package dev.enclave.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.rag.retrieve.SearchHit;
import dev.enclave.rag.store.Principal;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.server.model.ModelService;
import dev.enclave.server.rag.RagService;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.ArrayList;
import java.util.List;

/**
 * Grounded chat, the Enclave extension of {@code /v1/chat/completions}: a request carrying
 * {@code "enclave": {"collections": [...], "top_k": 5}} has the last user message searched in those collections;
 * the best chunks that fit the model's context (after the conversation and room for the answer) go into a system
 * message that tells the model to answer from them and cite them as [n]; the response ends with the citations
 * (document, page, snippet).
 */
@ApplicationScoped
public class Grounding {

    public record Grounded(JsonNode body, ArrayNode citations) {
    }

    static final String INSTRUCTIONS = "Answer the user's question using only the numbered sources below. "
            + "Cite every fact with the number of its source in square brackets, like [1]. "
            + "If the sources do not contain the answer, say that you do not know.";

    private final RagService rag;
    private final ModelService models;
    private final ObjectMapper json;

    public Grounding(RagService rag, ModelService models, ObjectMapper json) {
        this.rag = rag;
        this.models = models;
        this.json = json;
    }

    public Grounded ground(ObjectNode body, Principal principal) throws Exception {
        JsonNode ext = body.get("enclave");
        if (!ext.isObject()) throw ApiException.invalid("enclave", "enclave must be an object");
        List<String> collections = new ArrayList<>();
        JsonNode cols = ext.get("collections");
        if (cols != null && !cols.isNull()) {
            if (!cols.isArray()) throw ApiException.invalid("enclave", "enclave.collections must be an array of names");
            for (JsonNode c : cols) {
                if (!c.isTextual()) throw ApiException.invalid("enclave", "enclave.collections must be an array of names");
                collections.add(c.asText());
            }
        }
        int topK = ext.path("top_k").asInt(5);
        if (topK < 1 || topK > 50) throw ApiException.invalid("enclave", "enclave.top_k must be in 1..50");
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty array");
        }
        String question = lastUserText(messages);
        if (question.isBlank()) throw ApiException.invalid("messages", "grounded chat needs a user message to search with");

        List<SearchHit> hits = rag.search(principal,
                new HybridRetriever.Query(question, collections, topK, HybridRetriever.Mode.HYBRID));

        // context budget: what the conversation already takes, room for the answer, the rest for sources
        Tokenizer tok = models.model().tokenizer();
        int ctxLen = models.model().config().contextLength();
        int conversation = ChatPrompt.tokens(messages, null, models.chatTemplate(), tok).length;
        int answer = body.hasNonNull("max_tokens") ? body.get("max_tokens").asInt()
                : body.hasNonNull("max_completion_tokens") ? body.get("max_completion_tokens").asInt()
                : Math.min(512, ctxLen / 4);
        int budget = ctxLen - conversation - answer - tok.encode(INSTRUCTIONS, false, false).length - 16;

        StringBuilder sources = new StringBuilder();
        ArrayNode citations = json.createArrayNode();
        int n = 0;
        for (SearchHit h : hits) {
            String block = "[" + (n + 1) + "] " + label(h) + ":\n" + h.text().strip() + "\n\n";
            int cost = tok.encode(block, false, false).length;
            if (cost > budget) break;
            budget -= cost;
            sources.append(block);
            n++;
            ObjectNode c = citations.addObject().put("index", n).put("document_id", h.documentId())
                    .put("collection", h.collection()).put("source", h.source()).put("title", h.title())
                    .put("page_start", h.pageStart()).put("page_end", h.pageEnd())
                    .put("char_start", h.charStart()).put("char_end", h.charEnd()).put("score", h.score());
            String t = h.text().strip();
            c.put("snippet", t.length() > 300 ? t.substring(0, 300) + "…" : t);
        }
        String system = INSTRUCTIONS + "\n\nSources:\n\n" + (n == 0 ? "(no relevant source found)\n" : sources);

        ObjectNode out = body.deepCopy();
        out.remove("enclave");
        ArrayNode msgs = json.createArrayNode();
        boolean merged = false;
        for (JsonNode m : messages) {
            if (!merged && "system".equals(m.path("role").asText()) && m.path("content").isTextual()) {
                msgs.addObject().put("role", "system").put("content", system + "\n\n" + m.get("content").asText());
                merged = true;
            } else {
                msgs.add(m);
            }
        }
        if (!merged) msgs.insertObject(0).put("role", "system").put("content", system);
        out.set("messages", msgs);
        return new Grounded(out, citations);
    }

    /** The document embedder's model id: {@code /v1/embeddings} with this model uses it instead of the LLM. */
    public String embedderId() {
        return rag.embedderId();
    }

    /** OpenAI embeddings response from the document embedder (what retrieval uses). */
    public ObjectNode embeddings(JsonNode input) {
        List<String> texts = new ArrayList<>();
        if (input != null && input.isTextual()) {
            texts.add(input.asText());
        } else if (input != null && input.isArray() && !input.isEmpty() && input.size() <= 256) {
            for (JsonNode e : input) {
                if (!e.isTextual()) throw ApiException.invalid("input", "input must be a string or an array of strings");
                texts.add(e.asText());
            }
        } else {
            throw ApiException.invalid("input", "input must be a string or an array of 1 to 256 strings");
        }
        var embedder = rag.index().embedder();
        List<float[]> vectors = embedder.embedDocuments(texts);
        ObjectNode out = json.createObjectNode().put("object", "list").put("model", embedder.name());
        ArrayNode data = out.putArray("data");
        int tokens = 0;
        for (int i = 0; i < vectors.size(); i++) {
            tokens += Math.min(embedder.maxTokens(), embedder.countTokens(texts.get(i)) + 2);
            ArrayNode vec = data.addObject().put("object", "embedding").put("index", i).putArray("embedding");
            for (float v : vectors.get(i)) vec.add(v);
        }
        out.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        return out;
    }

    private static String label(SearchHit h) {
        String title = h.title() == null || h.title().isBlank() ? h.source() : h.title();
        String pages = h.pageStart() == h.pageEnd() ? "page " + h.pageStart() : "pages " + h.pageStart() + "-" + h.pageEnd();
        return title + ", " + pages;
    }

    private static String lastUserText(JsonNode messages) {
        for (int i = messages.size() - 1; i >= 0; i--) {
            JsonNode m = messages.get(i);
            if (!"user".equals(m.path("role").asText())) continue;
            JsonNode c = m.get("content");
            if (c == null) return "";
            if (c.isTextual()) return c.asText();
            StringBuilder sb = new StringBuilder();
            if (c.isArray()) for (JsonNode part : c) if (part.path("text").isTextual()) sb.append(part.get("text").asText()).append(' ');
            return sb.toString().trim();
        }
        return "";
    }
}
