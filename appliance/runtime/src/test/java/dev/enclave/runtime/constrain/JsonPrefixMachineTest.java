package dev.enclave.runtime.constrain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class JsonPrefixMachineTest {

    static boolean prefix(String s) {
        return new JsonPrefixMachine().accept(s.getBytes(StandardCharsets.UTF_8));
    }

    static boolean complete(String s) {
        JsonPrefixMachine m = new JsonPrefixMachine();
        return m.accept(s.getBytes(StandardCharsets.UTF_8)) && m.complete();
    }

    @Test
    void acceptsJsonObjectPrefixesOnly() {
        for (String ok : new String[] {"", "{ ", "{\"a\"", "{\"a\": [1, -2.5e+3, true, null, {\"b\": \"\\u00e9\\n\"}]", "{\"é\":0.0"}) {
            assertTrue(prefix(ok), ok);
        }
        for (String bad : new String[] {"[", "x", " {", "{a", "{\"a\" 1", "{\"a\":01", "{\"a\":tru3", "{\"a\":[1,]", "{}}", "{\"a\":\"\\x\"}", "{\"a\":-}", "{\"a\":1.}"}) {
            assertFalse(prefix(bad), bad);
        }
        assertTrue(complete("{\"a\": [1, {\"b\": false}], \"c\": \"d\"} "));
        assertFalse(complete("{\"a\": 1"));
    }

    /** Random documents serialized by Jackson are accepted whole; any cut is a prefix; random byte edits mostly not. */
    @Test
    void randomDocuments() throws Exception {
        ObjectMapper json = new ObjectMapper();
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < 300; i++) {
            String doc = json.writeValueAsString(randomObject(r, 0));
            assertTrue(complete(doc), doc);
            assertTrue(prefix(doc.substring(0, r.nextInt(doc.length() + 1))));
            boolean parses;
            String broken = doc.substring(0, doc.length() - 1) + "]";
            try {
                json.readTree(broken);
                parses = true;
            } catch (Exception e) {
                parses = false;
            }
            assertEquals(parses, complete(broken), broken);
        }
    }

    static Object randomObject(SplittableRandom r, int depth) {
        java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
        int n = r.nextInt(4);
        for (int i = 0; i < n; i++) m.put("k" + r.nextInt(100) + (r.nextBoolean() ? "é\"\\" : ""), randomValue(r, depth + 1));
        return m;
    }

    static Object randomValue(SplittableRandom r, int depth) {
        return switch (depth > 3 ? r.nextInt(4) : r.nextInt(6)) {
            case 0 -> r.nextInt(-1000, 1000);
            case 1 -> r.nextDouble() * 1e5;
            case 2 -> r.nextBoolean() ? null : Boolean.TRUE;
            case 3 -> "s\u0001\t" + r.nextInt();
            case 4 -> java.util.Arrays.asList(randomValue(r, depth + 1), randomValue(r, depth + 1));
            default -> randomObject(r, depth);
        };
    }

    /** Constrained generation on a real model yields a JSON object prefix at every step (and parses when it stops). */
    @Test
    void constrainedGenerationStaysJson() throws Exception {
        try (TransformerModel m = TransformerModel.load(SharedData.model("stories260K.gguf"))) {
            for (long seed = 1; seed <= 3; seed++) {
                Sampler s = new JsonObjectSampler(Sampler.of(0.8f, 0.95f, seed), m.tokenizer());
                GenerationResult r = new Generator(m).generate(new GenerationRequest(m.tokenizer().encode("Once upon a time", true, false),
                        60, s, List.of(), false), TokenListener.NONE);
                assertTrue(prefix(r.text()), r.text());
                if (r.finishReason() == dev.enclave.runtime.generate.FinishReason.STOP) new ObjectMapper().readTree(r.text());
            }
        }
    }
}
