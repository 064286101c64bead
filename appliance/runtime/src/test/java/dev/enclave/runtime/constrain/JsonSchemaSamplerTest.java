package dev.enclave.runtime.constrain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import dev.enclave.runtime.sampling.SamplingParams;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Schema-constrained decoding driven by random logits over a real 128k-token vocabulary: whatever the "model" wants,
 * every finished output parses and satisfies the schema, and every emitted prefix stayed valid.
 */
class JsonSchemaSamplerTest {

    static final ObjectMapper JSON = new ObjectMapper();

    static JsonSchema person() {
        Map<String, JsonSchema> props = new LinkedHashMap<>();
        props.put("name", new JsonSchema.Str(null));
        props.put("age", new JsonSchema.Num(true));
        props.put("role", new JsonSchema.Str(List.of("nurse", "doctor", "technician")));
        props.put("on_call", new JsonSchema.Bool());
        props.put("shifts", new JsonSchema.Arr(new JsonSchema.Num(false), 1, 3));
        props.put("note", new JsonSchema.Union(List.of(new JsonSchema.Str(null), new JsonSchema.Null())));
        return new JsonSchema.Obj(props, Set.of("name", "age", "role"), null);
    }

    static String generate(Tokenizer tok, JsonSchema schema, long seed, int maxTokens) {
        Random r = new Random(seed);
        JsonSchemaSampler s = new JsonSchemaSampler(Sampler.of(SamplingParams.of(1.0f, 1.0f, seed)), tok, schema);
        StringBuilder out = new StringBuilder();
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        float[] logits = new float[tok.vocabularySize()];
        boolean[] blank = new boolean[logits.length]; // a model rarely pads JSON with whitespace
        for (int t = 0; t < blank.length; t++) {
            String p = new String(tok.pieceBytes(t, false), StandardCharsets.UTF_8);
            blank[t] = !p.isEmpty() && p.isBlank();
        }
        for (int i = 0; i < maxTokens; i++) {
            // a "model" that likes short pieces, closing brackets and end-of-text now and then
            for (int t = 0; t < logits.length; t++) logits[t] = (float) (r.nextGaussian() * 2) - (blank[t] ? 8 : 0);
            int t = s.sample(logits);
            if (tok.isEndOfGeneration(t)) break;
            s.accept(t);
            bytes.writeBytes(tok.pieceBytes(t, false));
        }
        // the bytes must be valid UTF-8 on their own: no replacement characters allowed
        try {
            out.append(StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes.toByteArray())));
        } catch (java.nio.charset.CharacterCodingException e) {
            if (s.complete()) throw new AssertionError("complete output is not valid UTF-8", e);
            return null;
        }
        return s.complete() ? out.toString() : null;
    }

    @Test
    void everyCompletedOutputSatisfiesTheSchema() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama3-bpe-Q8_0.gguf"))) {
            Tokenizer tok = m.tokenizer();
            int completed = 0;
            for (long seed = 1; seed <= 12; seed++) {
                String doc = generate(tok, person(), seed, 400);
                if (doc == null) continue; // ran out of tokens inside a long free string: still a valid prefix
                completed++;
                JsonNode n = JSON.readTree(doc);
                assertTrue(n.isObject(), doc);
                assertTrue(n.get("name").isTextual(), doc);
                assertTrue(n.get("age").isIntegralNumber(), doc);
                assertTrue(List.of("nurse", "doctor", "technician").contains(n.get("role").asText()), doc);
                if (n.has("on_call")) assertTrue(n.get("on_call").isBoolean(), doc);
                if (n.has("shifts")) {
                    assertTrue(n.get("shifts").isArray() && n.get("shifts").size() >= 1 && n.get("shifts").size() <= 3, doc);
                    for (JsonNode x : n.get("shifts")) assertTrue(x.isNumber(), doc);
                }
                if (n.has("note")) assertTrue(n.get("note").isTextual() || n.get("note").isNull(), doc);
                n.fieldNames().forEachRemaining(k -> assertTrue(Set.of("name", "age", "role", "on_call", "shifts", "note").contains(k), doc));
            }
            assertTrue(completed >= 6, "most runs finish a document: " + completed);
        }
    }

    @Test
    void machineAcceptsValidAndRefusesInvalidPrefixes() {
        JsonSchema s = person();
        List<JsonSchemaMachine.State> st = List.of(JsonSchemaMachine.start(s));
        String ok = "{\"name\": \"Ana\", \"age\": 41, \"role\": \"nurse\", \"shifts\": [1.5, 2e3], \"note\": null}";
        List<JsonSchemaMachine.State> end = JsonSchemaMachine.feed(st, ok.getBytes(StandardCharsets.UTF_8));
        assertTrue(JsonSchemaMachine.anyComplete(end));
        for (String bad : new String[] {
                "{\"name\": \"Ana\"}",                       // missing required keys: '}' refused
                "{\"nam\": 1",                                // not a property
                "{\"name\": 3",                               // wrong type
                "{\"name\": \"A\", \"name\"",                 // duplicate key
                "{\"name\": \"A\", \"age\": 4.5",             // integer with a fraction
                "{\"name\": \"A\", \"age\": 4, \"role\": \"janitor\"", // not in the enum
                "{\"name\": \"A\", \"age\": 4, \"role\": \"nurse\", \"shifts\": []", // minItems 1
                "[1]"}) {
            List<JsonSchemaMachine.State> r = JsonSchemaMachine.feed(st, bad.getBytes(StandardCharsets.UTF_8));
            assertTrue(r.isEmpty() || !JsonSchemaMachine.anyComplete(r), bad);
            if (!bad.equals("{\"name\": \"Ana\"}")) assertTrue(r.isEmpty(), "refused at once: " + bad);
        }
        assertFalse(JsonSchemaMachine.anyComplete(JsonSchemaMachine.feed(st, "{\"name\": \"Ana\"".getBytes())));
        assertEquals(0, JsonSchemaMachine.feed(st, "{\"name\": \"Ana\"}".getBytes()).size(), "'}' before the required keys");
    }
}
