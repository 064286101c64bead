package dev.enclave.server.inference;

import com.fasterxml.jackson.databind.JsonNode;
import dev.enclave.runtime.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.List;

/**
 * Sampling and stopping parameters of every generating request, validated by this one table whichever protocol
 * sent them (the Ollama adapter renames its options to these fields before they get here).
 */
public record CompletionParams(int maxTokens, SamplingParams sampling, List<String> stop, boolean stream, boolean includeUsage, int topLogprobs,
                        boolean jsonObject, int n, dev.enclave.runtime.constrain.JsonSchema jsonSchema) {

    /** The sampler for one choice: the sampling chain, constrained to the requested JSON shape if any. */
    public dev.enclave.runtime.sampling.Sampler sampler(long seed, dev.enclave.runtime.tokenizer.Tokenizer tok) {
        dev.enclave.runtime.sampling.Sampler s = dev.enclave.runtime.sampling.Sampler.of(sampling.withSeed(seed));
        if (jsonSchema != null) return new dev.enclave.runtime.constrain.JsonSchemaSampler(s, tok, jsonSchema);
        if (jsonObject) return new dev.enclave.runtime.constrain.JsonObjectSampler(s, tok);
        return s;
    }

    /** Most choices one request may ask for (each is a sequence in the running batch). */
    static final int MAX_N = 8;
    /** Stop strings a request may give, and the longest one (each is searched for after every token). */
    static final int MAX_STOP = 16, MAX_STOP_CHARS = 256;

    public static CompletionParams parse(JsonNode body, int defaultMaxTokens, int contextLength, int vocabularySize, boolean chat) {
        return parse(body, defaultMaxTokens, contextLength, contextLength, vocabularySize, chat);
    }

    /** As above; an answer may be up to {@code maxAnswer} tokens (beyond the context where the engine shifts it). */
    public static CompletionParams parse(JsonNode body, int defaultMaxTokens, int contextLength, int maxAnswer, int vocabularySize, boolean chat) {
        int maxTokens = defaultMaxTokens;
        for (String key : new String[] {"max_completion_tokens", "max_tokens"}) {
            JsonNode v = body.get(key);
            if (v != null && !v.isNull()) {
                if (!v.isIntegralNumber() || !v.canConvertToInt()) {
                    throw ApiException.invalid(key, key + " must be an integer");
                }
                maxTokens = v.asInt();
                if (maxTokens < 1 || maxTokens > maxAnswer) {
                    throw ApiException.invalid(key, key + " must be between 1 and " + maxAnswer
                            + (maxAnswer == contextLength ? " (the model's context)" : " (16 contexts: the engine shifts the context)") + ", got " + maxTokens);
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
        JsonNode nNode = body.get("n");
        int n = 1;
        if (nNode != null && !nNode.isNull()) {
            if (!nNode.isIntegralNumber() || !nNode.canConvertToInt() || nNode.asInt() < 1 || nNode.asInt() > MAX_N) {
                throw ApiException.invalid("n", "n must be an integer between 1 and " + MAX_N);
            }
            n = nNode.asInt();
        }
        List<String> stop = new ArrayList<>();
        JsonNode st = body.get("stop");
        if (st != null && !st.isNull()) {
            String rule = "stop must be a string or an array of up to " + MAX_STOP + " strings of at most " + MAX_STOP_CHARS + " characters";
            if (st.isTextual()) {
                stop.add(st.asText());
            } else if (st.isArray() && st.size() <= MAX_STOP) {
                for (JsonNode e : st) {
                    if (!e.isTextual()) throw ApiException.invalid("stop", rule);
                    stop.add(e.asText());
                }
            } else {
                throw ApiException.invalid("stop", rule);
            }
            for (String x : stop) if (x.length() > MAX_STOP_CHARS) throw ApiException.invalid("stop", rule);
            stop.removeIf(String::isEmpty);
        }
        boolean stream = bool(body, "stream");
        boolean includeUsage = false;
        JsonNode so = body.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!so.isObject()) throw ApiException.invalid("stream_options", "stream_options must be an object");
            includeUsage = bool(so, "include_usage");
        }
        float minP = number(body, "min_p", 0.0, 0.0, 1.0);
        float typicalP = number(body, "typical_p", 1.0, Float.MIN_NORMAL, 1.0);
        float repeatPenalty = number(body, "repeat_penalty", 1.0, 0.01, 10.0);
        float frequency = number(body, "frequency_penalty", 0.0, -2.0, 2.0);
        float presence = number(body, "presence_penalty", 0.0, -2.0, 2.0);
        int topK = integer(body, "top_k", 0, 0, vocabularySize);
        // -1 is Ollama's "the whole context"; the penalty window is an array of this many tokens
        int repeatLastN = integer(body, "repeat_last_n", 64, -1, contextLength);
        if (repeatLastN == -1) repeatLastN = contextLength;
        Map<Integer, Float> bias = new HashMap<>();
        JsonNode lb = body.get("logit_bias");
        if (lb != null && !lb.isNull()) {
            if (!lb.isObject()) throw ApiException.invalid("logit_bias", "logit_bias must map token ids to numbers");
            for (var it = lb.fields(); it.hasNext(); ) {
                var e = it.next();
                int id;
                try {
                    id = Integer.parseInt(e.getKey());
                } catch (NumberFormatException ex) {
                    throw ApiException.invalid("logit_bias", "logit_bias keys must be token ids, got '" + e.getKey() + "'");
                }
                if (id < 0 || id >= vocabularySize) throw ApiException.invalid("logit_bias", "token id " + id + " is outside the vocabulary");
                if (!e.getValue().isNumber() || Math.abs(e.getValue().asDouble()) > 100) {
                    throw ApiException.invalid("logit_bias", "logit_bias values must be numbers in [-100, 100]");
                }
                bias.put(id, (float) e.getValue().asDouble());
            }
        }
        SamplingParams sampling = new SamplingParams(temperature, topK, topP, minP, typicalP, repeatPenalty, repeatLastN,
                frequency, presence, bias, seed);
        int topLogprobs = -1;
        JsonNode lp = body.get("logprobs");
        if (lp != null && !lp.isNull()) {
            if (chat) {
                if (!lp.isBoolean()) throw ApiException.invalid("logprobs", "logprobs must be a boolean");
                if (lp.asBoolean()) {
                    JsonNode top = body.get("top_logprobs");
                    topLogprobs = top == null || top.isNull() ? 0 : top.asInt(-1);
                    if (top != null && !top.isNull() && (!top.isIntegralNumber() || topLogprobs < 0 || topLogprobs > 20)) {
                        throw ApiException.invalid("top_logprobs", "top_logprobs must be an integer between 0 and 20");
                    }
                }
            } else {
                if (!lp.isIntegralNumber() || lp.asInt() < 0 || lp.asInt() > 5) throw ApiException.invalid("logprobs", "logprobs must be an integer between 0 and 5");
                topLogprobs = lp.asInt();
            }
        } else if (chat && body.has("top_logprobs") && !body.get("top_logprobs").isNull()) {
            throw ApiException.invalid("top_logprobs", "top_logprobs needs logprobs: true");
        }
        boolean jsonObject = false;
        dev.enclave.runtime.constrain.JsonSchema jsonSchema = null;
        JsonNode rf = body.get("response_format");
        if (rf != null && !rf.isNull()) {
            String type = rf.path("type").asText("");
            switch (type) {
                case "text" -> { }
                case "json_object" -> jsonObject = true;
                case "json_schema" -> {
                    JsonNode js = rf.get("json_schema");
                    if (js == null || !js.isObject()) throw ApiException.invalid("response_format", "response_format.json_schema must be an object with a schema");
                    jsonSchema = SchemaCompiler.compile(js.get("schema"));
                }
                default -> throw ApiException.invalid("response_format", "response_format.type must be text, json_object or json_schema");
            }
        }
        return new CompletionParams(maxTokens, sampling, stop, stream, includeUsage, topLogprobs, jsonObject, n, jsonSchema);
    }

    private static int integer(JsonNode body, String key, int dflt, int min, int max) {
        JsonNode v = body.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < min || v.asInt() > max) {
            throw ApiException.invalid(key, key + " must be an integer between " + min + " and " + max + ", got " + v);
        }
        return v.asInt();
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
