package dev.enclave.runtime.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.generate.FinishReason;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.sampling.GreedySampler;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The real trained stories260K model against llama.cpp's tokens and greedy path and against an independent
 * float64 forward pass: same prompt tokens, same 32 greedy tokens, logits of every prompt position within 1e-4.
 */
class StoriesParityTest {

    @ParameterizedTest
    @CsvSource({"stories260K.gguf, stories260K-F32.ref.json", "stories260K-F16.gguf, stories260K-F16.ref.json"})
    void matchesReferences(String modelFile, String refFile) throws Exception {
        JsonNode ref = SharedData.json(SharedData.model(refFile));
        try (TransformerModel model = TransformerModel.load(SharedData.model(modelFile))) {
            int[] prompt = model.tokenizer().encode(ref.get("prompt").asText(), true, false);
            assertArrayEquals(SharedData.ints(ref.get("prompt_tokens")), prompt, "prompt tokens");

            // every prompt position against the float64 reference
            JsonNode f64 = ref.get("f64_reference");
            InferenceState s = model.newState(64);
            double worst = 0;
            for (int p = 0; p < prompt.length; p++) {
                float[] logits = model.forward(s, prompt[p]);
                double[] expected = f64.has("all_logits")
                        ? SharedData.doubles(f64.get("all_logits").get(p))
                        : (p == prompt.length - 1 ? SharedData.doubles(f64.get("last_logits")) : null);
                if (expected == null) continue;
                assertEquals(expected.length, logits.length);
                for (int i = 0; i < logits.length; i++) {
                    worst = Math.max(worst, Math.abs(logits[i] - expected[i]));
                }
            }
            assertTrue(worst < 1e-4, "max |logit - f64 reference| = " + worst);

            GenerationResult r = new Generator(model).generate(
                    new GenerationRequest(prompt, 32, new GreedySampler(), List.of(), true), TokenListener.NONE);
            assertArrayEquals(SharedData.ints(ref.get("greedy_tokens")), r.tokens(), "greedy tokens");
            assertEquals(ref.get("greedy_text").asText(), r.text());
            assertEquals(FinishReason.LENGTH, r.finishReason());
        }
    }
}
