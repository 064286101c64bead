package dev.enclave.server.inference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.rag.retrieve.SearchHit;
import dev.enclave.rag.store.Principal;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.server.model.ServedModel;
import dev.enclave.server.rag.RagService;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.ArrayList;
import java.util.List;

/**
 * Grounded chat, the Enclave extension of {@code /v1/chat/completions}: a request carrying
 * {@code "enclave": {"collections": [...], "top_k": 5}} has the last user message searched in those collections;
 * the best chunks that fit the model's context (after the conversation and room for the answer) go into that last
 * user message, with the instruction to answer from them and cite them as [n]; the response ends with the citations
 * (document, page, snippet).
 *
 * <p>Why the last user message and not the system message: the conversation before the newest question then stays
 * the same from turn to turn, so the scheduler's prefix cache serves it, and a follow-up computes only the previous
 * answer (its question came back without sources), its own question and its sources. Earlier turns keep no sources:
 * a conversation's context then grows by its questions and answers, not by every turn's sources, which would soon
 * leave no room for new ones (measured: with them kept, follow-ups were slower, not faster).
 */
@ApplicationScoped
public class Grounding {

    /** The request with its sources in place, and the citations. */
    public record Grounded(ObjectNode body, ArrayNode citations) {
    }

    static final String INSTRUCTIONS = "Answer the question using only the numbered sources below. "
            + "Cite every fact with the number of its source in square brackets, like [1]. "
            + "If the sources do not contain the answer, say that you do not know.";

    private final RagService rag;
    private final ObjectMapper json;

    public Grounding(RagService rag, ObjectMapper json) {
        this.rag = rag;
        this.json = json;
    }

    public Grounded ground(ServedModel model, ObjectNode body, Principal principal) throws Exception {
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
        JsonNode k = ext.get("top_k");
        int topK = k == null || k.isNull() ? 5 : k.isIntegralNumber() && k.canConvertToInt() ? k.asInt() : -1;
        if (topK < 1 || topK > 50) throw ApiException.invalid("enclave", "enclave.top_k must be an integer in 1..50");
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty array");
        }
        int last = lastUser(messages);
        if (last < 0) throw ApiException.invalid("messages", "grounded chat needs a user message to search with");
        String question = text(messages.get(last));
        if (question.isBlank()) throw ApiException.invalid("messages", "grounded chat needs a user message to search with");
        ObjectNode out = body.deepCopy(); // the request as the model will see it: the copy gets the sources
        out.remove("enclave");
        ArrayNode history = (ArrayNode) out.get("messages");

        List<SearchHit> hits = rag.search(principal,
                new HybridRetriever.Query(question, collections, topK, HybridRetriever.Mode.HYBRID));

        // context budget: what the conversation already takes, room for the answer, the rest for sources
        Tokenizer tok = model.tokenizer();
        int ctxLen = model.contextLength();
        int conversation = ChatPrompt.tokens(history, null, model.chatTemplate(), tok).length;
        JsonNode max = body.hasNonNull("max_tokens") ? body.get("max_tokens") : body.get("max_completion_tokens");
        int answer = max != null && max.isIntegralNumber() && max.canConvertToInt() ? Math.max(0, max.asInt()) : Math.min(512, ctxLen / 4);
        long budget = (long) ctxLen - conversation - answer - tok.encode(INSTRUCTIONS, false, false).length - 16;

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
        // the question first: the next turn sends it back as plain text, and the cache then still matches it
        String grounded = question + "\n\n" + INSTRUCTIONS + "\n\nSources:\n\n"
                + (n == 0 ? "(no relevant source found)" : sources.toString().strip()) + "\n";
        ((ObjectNode) history.get(last)).put("content", grounded);
        return new Grounded(out, citations);
    }

    /** The document embedder's model id: embeddings requests naming it use it instead of the LLM. */
    public String embedderId() {
        return rag.embedderId();
    }

    /** The embedder retrieval uses. */
    dev.enclave.rag.embed.Embedder documentEmbedder() {
        return rag.index().embedder();
    }

    private static String label(SearchHit h) {
        String title = h.title() == null || h.title().isBlank() ? h.source() : h.title();
        String pages = h.pageStart() == h.pageEnd() ? "page " + h.pageStart() : "pages " + h.pageStart() + "-" + h.pageEnd();
        return title + ", " + pages;
    }

    private static int lastUser(JsonNode messages) {
        for (int i = messages.size() - 1; i >= 0; i--) if ("user".equals(messages.get(i).path("role").asText())) return i;
        return -1;
    }

    private static String text(JsonNode m) {
        JsonNode c = m.get("content");
        if (c == null) return "";
        if (c.isTextual()) return c.asText();
        StringBuilder sb = new StringBuilder();
        if (c.isArray()) for (JsonNode part : c) if (part.path("text").isTextual()) sb.append(part.get("text").asText()).append(' ');
        return sb.toString().trim();
    }
}
