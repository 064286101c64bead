package dev.enclave.server.api;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Turns OpenAI chat messages into prompt text. Until chat templates from GGUF metadata land (runtime issue),
 * the conversation is rendered as plain text: each message's content on its own line, which is what a base
 * model such as the bundled story model continues naturally.
 */
final class ChatPrompt {

    private ChatPrompt() {
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
