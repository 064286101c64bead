package dev.enclave.server.inference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds function calls in a model's answer, in the formats the supported chat templates teach: Hermes/Qwen
 * ({@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>}, any number), Llama 3.x (the whole answer is
 * {@code {"name": ..., "parameters": {...}}}) and Mistral ({@code [TOOL_CALLS] [{"name": ..., "arguments": ...}]}).
 */
public final class ToolCallParser {

    /** One call: the function name and its arguments as a JSON text. */
    public record Call(String name, String argumentsJson) {
    }

    /** The calls found and the text around them. */
    public record Parsed(List<Call> calls, String content) {
    }

    private static final Pattern HERMES = Pattern.compile("<tool_call>\\s*(\\{.*?\\})\\s*</tool_call>", Pattern.DOTALL);
    private static final ObjectMapper JSON = new ObjectMapper();

    private ToolCallParser() {
    }

    public static Parsed parse(String text, List<String> knownTools) {
        List<Call> calls = new ArrayList<>();
        Matcher m = HERMES.matcher(text);
        StringBuilder rest = new StringBuilder();
        int last = 0;
        while (m.find()) {
            Call c = call(m.group(1), knownTools);
            if (c == null) continue;
            calls.add(c);
            rest.append(text, last, m.start());
            last = m.end();
        }
        if (!calls.isEmpty()) {
            rest.append(text.substring(last));
            return new Parsed(calls, rest.toString().strip());
        }
        String t = text.strip();
        if (t.startsWith("[TOOL_CALLS]")) {
            try {
                JsonNode arr = JSON.readTree(t.substring("[TOOL_CALLS]".length()).strip());
                if (arr.isArray()) {
                    for (JsonNode n : arr) {
                        Call c = call(n.toString(), knownTools);
                        if (c != null) calls.add(c);
                    }
                }
            } catch (Exception ignored) {
                // not a call after all
            }
            if (!calls.isEmpty()) return new Parsed(calls, "");
        }
        if (t.startsWith("{") && t.endsWith("}")) {
            Call c = call(t, knownTools);
            if (c != null) return new Parsed(List.of(c), "");
        }
        return new Parsed(List.of(), text);
    }

    private static Call call(String json, List<String> knownTools) {
        try {
            JsonNode n = JSON.readTree(json);
            JsonNode name = n.get("name");
            if (name == null || !name.isTextual() || !knownTools.contains(name.asText())) return null;
            JsonNode args = n.has("arguments") ? n.get("arguments") : n.get("parameters");
            if (args == null || args.isNull()) args = JSON.createObjectNode();
            String argsJson = args.isTextual() ? args.asText() : JSON.writeValueAsString(args);
            return new Call(name.asText(), argsJson);
        } catch (Exception e) {
            return null;
        }
    }
}
