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
import java.util.LinkedHashMap;
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
 * the same from turn to turn, so the scheduler's prefix cache serves it and a follow-up computes only its new turn.
 * For that the earlier turns must read as they were computed: an earlier grounded question, sent back by the client
 * as its plain text before the answer it got, is given its sources again ({@link #remember}).
 */
@ApplicationScoped
public class Grounding {

    /**
     * The request with its sources in place, the citations, and the newest question as sent and as grounded (kept
     * with the answer for the next turn).
     */
    public record Grounded(ObjectNode body, ArrayNode citations, String question, String groundedContent) {
    }

    static final String INSTRUCTIONS = "Answer the question using only the numbered sources below. "
            + "Cite every fact with the number of its source in square brackets, like [1]. "
            + "If the sources do not contain the answer, say that you do not know.";

    /** Grounded turns remembered for follow-ups, and the characters they may hold. */
    private static final int TURNS = 256;
    private static final long TURN_CHARS = 4L << 20;

    private final RagService rag;
    private final ObjectMapper json;
    /** answer text -> {question as sent, question with its sources}; oldest evicted first */
    private final LinkedHashMap<String, String[]> turns = new LinkedHashMap<>(64, 0.75f, true);
    private long turnChars;

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
        ArrayNode history = restoreEarlierSources(messages);

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
        String grounded = INSTRUCTIONS + "\n\nSources:\n\n" + (n == 0 ? "(no relevant source found)\n\n" : sources)
                + "Question: " + question;
        ObjectNode out = body.deepCopy();
        out.remove("enclave");
        ((ObjectNode) history.get(last)).put("content", grounded);
        out.set("messages", history);
        return new Grounded(out, citations, question, grounded);
    }

    /**
     * The messages with each earlier grounded question given the sources it was answered from, where the answer
     * that follows it is one this server gave (else as sent).
     */
    private ArrayNode restoreEarlierSources(JsonNode messages) {
        ArrayNode out = json.createArrayNode();
        for (JsonNode m : messages) out.add(m.deepCopy());
        for (int i = 1; i < out.size(); i++) {
            JsonNode a = out.get(i);
            if (!"assistant".equals(a.path("role").asText()) || !a.path("content").isTextual()) continue;
            String[] turn;
            synchronized (turns) {
                turn = turns.get(a.get("content").asText());
            }
            JsonNode q = out.get(i - 1);
            if (turn != null && q.isObject() && "user".equals(q.path("role").asText()) && text(q).equals(turn[0])) {
                ((ObjectNode) q).put("content", turn[1]);
            }
        }
        return out;
    }

    /** Keeps a grounded turn (the answer, the question as sent, the question with its sources) for the next turn. */
    void remember(String answer, String question, String groundedContent) {
        if (answer == null || answer.isEmpty()) return;
        long size = answer.length() + question.length() + groundedContent.length();
        if (size > TURN_CHARS) return;
        synchronized (turns) {
            String[] old = turns.put(answer, new String[] {question, groundedContent});
            turnChars += size - (old == null ? 0 : answer.length() + old[0].length() + old[1].length());
            var it = turns.entrySet().iterator();
            while ((turns.size() > TURNS || turnChars > TURN_CHARS) && it.hasNext()) {
                var e = it.next();
                turnChars -= e.getKey().length() + e.getValue()[0].length() + e.getValue()[1].length();
                it.remove();
            }
        }
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
