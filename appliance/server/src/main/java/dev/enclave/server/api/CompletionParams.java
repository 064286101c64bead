package dev.enclave.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/** Sampling and stopping parameters shared by /v1/completions and /v1/chat/completions, validated. */
record CompletionParams(int maxTokens, float temperature, float topP, long seed, List<String> stop, boolean stream,
                        boolean includeUsage) {

    static CompletionParams parse(JsonNode body, int defaultMaxTokens, int contextLength) {
        int maxTokens = defaultMaxTokens;
        for (String key : new String[] {"max_completion_tokens", "max_tokens"}) {
            JsonNode v = body.get(key);
            if (v != null && !v.isNull()) {
                if (!v.isIntegralNumber() || !v.canConvertToInt()) {
                    throw ApiException.invalid(key, key + " must be an integer");
                }
                maxTokens = v.asInt();
                if (maxTokens < 1 || maxTokens > contextLength) {
                    throw ApiException.invalid(key, key + " must be between 1 and " + contextLength + " (the model's context), got " + maxTokens);
                }
                break;
            }
        }
        float temperature = number(body, "temperature", 1.0, 0.0, 2.0);
        float topP = number(body, "top_p", 1.0, 0.0, 1.0);
        if (topP == 0f) {
            topP = Float.MIN_NORMAL; // OpenAI accepts 0: only the most likely token survives
        }
        long seed;
        JsonNode s = body.get("seed");
        if (s == null || s.isNull()) {
            seed = System.nanoTime();
        } else if (s.isIntegralNumber() && s.canConvertToLong()) {
            seed = s.asLong();
        } else {
            throw ApiException.invalid("seed", "seed must be an integer");
        }
        JsonNode n = body.get("n");
        if (n != null && !n.isNull() && (!n.isIntegralNumber() || n.asInt() != 1)) {
            throw ApiException.invalid("n", "only n = 1 is supported");
        }
        List<String> stop = new ArrayList<>();
        JsonNode st = body.get("stop");
        if (st != null && !st.isNull()) {
            if (st.isTextual()) {
                stop.add(st.asText());
            } else if (st.isArray() && st.size() <= 4) {
                for (JsonNode e : st) {
                    if (!e.isTextual()) throw ApiException.invalid("stop", "stop must be a string or an array of up to 4 strings");
                    stop.add(e.asText());
                }
            } else {
                throw ApiException.invalid("stop", "stop must be a string or an array of up to 4 strings");
            }
        }
        boolean stream = bool(body, "stream");
        boolean includeUsage = false;
        JsonNode so = body.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!so.isObject()) throw ApiException.invalid("stream_options", "stream_options must be an object");
            includeUsage = bool(so, "include_usage");
        }
        return new CompletionParams(maxTokens, temperature, topP, seed, stop, stream, includeUsage);
    }

    private static float number(JsonNode body, String key, double dflt, double min, double max) {
        JsonNode v = body.get(key);
        if (v == null || v.isNull()) return (float) dflt;
        if (!v.isNumber()) throw ApiException.invalid(key, key + " must be a number");
        double d = v.asDouble();
        if (!(d >= min && d <= max)) throw ApiException.invalid(key, key + " must be between " + min + " and " + max + ", got " + d);
        return (float) d;
    }

    private static boolean bool(JsonNode body, String key) {
        JsonNode v = body.get(key);
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw ApiException.invalid(key, key + " must be a boolean");
        return v.asBoolean();
    }
}
