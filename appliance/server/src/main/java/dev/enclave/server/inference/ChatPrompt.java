package dev.enclave.server.inference;

import com.fasterxml.jackson.databind.JsonNode;
import dev.enclave.runtime.chat.ChatTemplate;
import dev.enclave.runtime.chat.TemplateException;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Turns OpenAI chat messages into prompt tokens: through the model's chat template ({@code tokenizer.chat_template})
 * when it has one; otherwise (base models such as the bundled story model) as plain text, each message's content on
 * its own line, which a base model continues naturally.
 */
final class ChatPrompt {

    private ChatPrompt() {
    }

    /**
     * Prompt tokens for a chat request: through the model's own chat template when it has one, else the plain
     * rendering below.
     */
    static int[] tokens(JsonNode messages, JsonNode tools, Optional<ChatTemplate> template, Tokenizer tok) {
        return tokens(messages, tools, template, tok, null);
    }

    /**
     * As above; an earlier answer that {@code answers} knows is read as the tokens it was generated as (where the
     * template wrote its text unchanged), so that the prefix cache still holds the whole conversation.
     */
    static int[] tokens(JsonNode messages, JsonNode tools, Optional<ChatTemplate> template, Tokenizer tok,
                        AnswerTokens answers) {
        String plain = render(messages); // validates roles and content either way
        String rendered = plain;
        if (template.isPresent()) {
            List<Map<String, Object>> msgs = new ArrayList<>();
            for (JsonNode m : messages) msgs.add(asMap(m));
            List<Map<String, Object>> toolList = new ArrayList<>();
            if (tools != null && tools.isArray()) for (JsonNode t : tools) toolList.add(asMap(t));
            try {
                rendered = template.get().render(msgs, toolList, true);
            } catch (TemplateException e) {
                throw ApiException.invalid("messages", "the model's chat template refused the conversation: " + e.getMessage());
            }
        }
        if (answers == null) return encode(tok, template, rendered, true);
        // the rendered text cut around each known answer, in order: pieces tokenized as usual, answers spliced
        List<int[]> parts = new ArrayList<>();
        int at = 0;
        for (JsonNode m : messages) {
            if (!"assistant".equals(m.path("role").asText()) || !m.path("content").isTextual()) continue;
            String content = m.path("content").asText();
            int[] known = content.isEmpty() ? null : answers.tokensOf(content, tok);
            if (known == null) continue;
            int i = rendered.indexOf(content, at);
            if (i < 0) continue; // the template changed the text (trimmed it, say): tokenized as usual
            parts.add(encode(tok, template, rendered.substring(at, i), at == 0));
            parts.add(known);
            at = i + content.length();
        }
        if (parts.isEmpty()) return encode(tok, template, rendered, true);
        parts.add(encode(tok, template, rendered.substring(at), false));
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        n = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, n, p.length);
            n += p.length;
        }
        // pieces must read as the same text (a SentencePiece tokenizer, say, adds a space at each encode's start)
        int[] whole = encode(tok, template, rendered, true);
        return tok.decode(out).equals(tok.decode(whole)) ? out : whole;
    }

    /** Tokens of (a piece of) the rendered conversation; the first piece gets the BOS the model asks for. */
    private static int[] encode(Tokenizer tok, Optional<ChatTemplate> template, String text, boolean first) {
        if (template.isEmpty()) return tok.encode(text, first, false);
        return first ? ChatTemplate.tokenize(tok, text, template.get().bosToken()) : tok.encode(text, false, true);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(JsonNode node) {
        Object v = toJava(node);
        return v instanceof Map<?, ?> m ? (Map<String, Object>) m : new LinkedHashMap<>();
    }

    /** Jackson tree to the plain values the template engine uses; content parts are flattened to text. */
    static Object toJava(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isBoolean()) return n.asBoolean();
        if (n.isIntegralNumber()) return n.asLong();
        if (n.isNumber()) return n.asDouble();
        if (n.isArray()) {
            List<Object> l = new ArrayList<>();
            for (JsonNode e : n) l.add(toJava(e));
            return l;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (var it = n.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals("content") && e.getValue().isArray()) {
                StringBuilder sb = new StringBuilder();
                for (JsonNode part : e.getValue()) if (part.has("text")) sb.append(part.get("text").asText());
                m.put("content", sb.toString());
            } else if (e.getKey().equals("arguments") && e.getValue().isTextual()) {
                m.put("arguments", parseArguments(e.getValue().asText()));
            } else {
                m.put(e.getKey(), toJava(e.getValue()));
            }
        }
        return m;
    }

    /** OpenAI sends tool-call arguments as a JSON string; templates expect the object. */
    private static Object parseArguments(String json) {
        try {
            return toJava(new com.fasterxml.jackson.databind.ObjectMapper().readTree(json));
        } catch (Exception e) {
            return json;
        }
    }

    static String render(JsonNode messages) {
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty array");
        }
        StringBuilder sb = new StringBuilder();
        int i = 0;
        for (JsonNode m : messages) {
            if (!m.isObject()) throw ApiException.invalid("messages[" + i + "]", "each message must be an object");
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) {
                throw ApiException.invalid("messages[" + i + "].role", "each message needs a role");
            }
            switch (role.asText()) {
                case "system", "developer", "user", "assistant", "tool" -> { }
                default -> throw ApiException.invalid("messages[" + i + "].role", "unknown role '" + role.asText() + "'");
            }
            String content = content(m.get("content"), i);
            if (!content.isEmpty()) {
                if (!sb.isEmpty()) sb.append('\n');
                sb.append(content);
            }
            i++;
        }
        return sb.toString();
    }

    private static String content(JsonNode c, int i) {
        if (c == null || c.isNull()) return "";
        if (c.isTextual()) return c.asText();
        if (c.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (JsonNode part : c) {
                JsonNode type = part.get("type");
                if (type != null && "text".equals(type.asText()) && part.has("text")) {
                    sb.append(part.get("text").asText());
                } else {
                    throw ApiException.invalid("messages[" + i + "].content", "only text content parts are supported");
                }
            }
            return sb.toString();
        }
        throw ApiException.invalid("messages[" + i + "].content", "content must be a string or an array of text parts");
    }
}
