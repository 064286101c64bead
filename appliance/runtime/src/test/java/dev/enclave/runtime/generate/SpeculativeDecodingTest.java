package dev.enclave.runtime.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Speculative decoding on a real model (TinyStories-656K): the answer is the one plain decoding gives, greedy and
 * sampled (the same sampler draws the same numbers), and a prompt that the answer copies from keeps most guesses.
 */
class SpeculativeDecodingTest {

    @Test
    void drafterProposesWhatFollowedTheLatestMatch() {
        NgramDrafter d = new NgramDrafter(2, 3);
        for (int t : new int[] {5, 6, 7, 8, 9, 1, 5, 6, 7, 2, 3, 5, 6}) d.accept(t);
        int[] out = new int[4];
        // the last 2-gram (5, 6) last occurred before "7, 2, 3"; no 3-gram (3, 5, 6) occurred before
        assertEquals(4, d.draft(out, 4));
        assertArrayEquals(new int[] {7, 2, 3, 5}, out);
        assertEquals(2, d.draft(out, 2));
        NgramDrafter none = new NgramDrafter(2, 3);
        for (int t : new int[] {1, 2, 3, 4}) none.accept(t);
        assertEquals(0, none.draft(out, 4));
    }

    @Test
    void greedyAndSampledAnswersEqualPlainDecoding() throws Exception {
        String story = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt")).substring(0, 900);
        try (TransformerModel model = TransformerModel.load(SharedData.model("TinyStories-656K-F32.gguf"))) {
            // copy-heavy: the story, then its own beginning again, which the model tends to continue as before
            int[] prompt = model.tokenizer().encode(story + "\n\n" + story.substring(0, 200), true, false);
            Generator plain = new Generator(model), spec = new Generator(model, Speculation.NGRAM.withFixedCosts());
            GenerationResult a = plain.generate(new GenerationRequest(prompt, 96, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
            GenerationResult b = spec.generate(new GenerationRequest(prompt, 96, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
            assertArrayEquals(a.tokens(), b.tokens(), "greedy answers");
            assertEquals(a.text(), b.text());
            Speculation.Stats s = b.speculation();
            assertTrue(s.accepted() >= 24 && s.steps() < s.accepted(), "copying keeps guesses: " + s);

            Map<Integer, Integer> firstTokens = new HashMap<>();
            for (long seed = 1; seed <= 12; seed++) {
                GenerationResult x = plain.generate(new GenerationRequest(prompt, 48, Sampler.of(0.9f, 0.95f, seed), List.of(), true), TokenListener.NONE);
                GenerationResult y = spec.generate(new GenerationRequest(prompt, 48, Sampler.of(0.9f, 0.95f, seed), List.of(), true), TokenListener.NONE);
                assertArrayEquals(x.tokens(), y.tokens(), "seed " + seed);
                firstTokens.merge(x.tokens()[8], 1, Integer::sum);
            }
            assertTrue(firstTokens.size() > 1, "the sampler does sample: " + firstTokens);
        }
    }

    @Test
    void aDraftModelsGuessesGiveThePlainAnswer() throws Exception {
        int[] prompt;
        try (TransformerModel model = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            prompt = model.tokenizer().encode("Once upon a time, there was a little girl named Lily. She", true, false);
            // the model's own 4-bit copy, and a smaller model trained on the same stories (it agrees on ~37% of the
            // greedy continuation's next tokens: guessing pauses, the answer is still the plain one)
            for (String file : new String[] {"tinystories-hd64-Q4_0.gguf", "TinyStories-656K-F32.gguf"}) {
                try (TransformerModel draft = TransformerModel.load(SharedData.model(file))) {
                    ModelDrafter.checkVocabulary(model.tokenizer(), draft.tokenizer());
                    Generator plain = new Generator(model), spec = new Generator(model, Speculation.withDraftModel(6, draft).withFixedCosts());
                    GenerationResult a = plain.generate(new GenerationRequest(prompt, 120, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
                    GenerationResult b = spec.generate(new GenerationRequest(prompt, 120, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
                    assertArrayEquals(a.tokens(), b.tokens(), "greedy answers, draft " + file);
                    Speculation.Stats s = b.speculation();
                    if (file.contains("Q4_0")) assertTrue(s.acceptance() > 0.6 && s.accepted() > 50, "the 4-bit copy's guesses are kept: " + s);
                    else assertTrue(s.drafted() > 0, "the small model guessed: " + s);
                    for (long seed = 1; seed <= 8; seed++) {
                        GenerationResult x = plain.generate(new GenerationRequest(prompt, 40, Sampler.of(0.8f, 0.95f, seed), List.of(), true), TokenListener.NONE);
                        GenerationResult y = spec.generate(new GenerationRequest(prompt, 40, Sampler.of(0.8f, 0.95f, seed), List.of(), true), TokenListener.NONE);
                        assertArrayEquals(x.tokens(), y.tokens(), "seed " + seed + ", draft " + file);
                    }
                }
            }
        }
        try (TransformerModel model = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"));
             TransformerModel other = TransformerModel.load(SharedData.model("stories260K.gguf"))) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> ModelDrafter.checkVocabulary(model.tokenizer(), other.tokenizer()));
            assertTrue(e.getMessage().contains("same vocabulary"), e.getMessage());
        }
    }

    @Test
    void stopsAndLimitsHoldInsideAVerifiedRun() throws Exception {
        String story = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt")).substring(0, 900);
        try (TransformerModel model = TransformerModel.load(SharedData.model("TinyStories-656K-F32.gguf"))) {
            int[] prompt = model.tokenizer().encode(story + "\n\n" + story.substring(0, 200), true, false);
            Generator plain = new Generator(model), spec = new Generator(model, Speculation.NGRAM.withFixedCosts());
            for (int max : new int[] {1, 2, 5, 13}) {
                GenerationResult a = plain.generate(new GenerationRequest(prompt, max, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
                GenerationResult b = spec.generate(new GenerationRequest(prompt, max, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE);
                assertArrayEquals(a.tokens(), b.tokens(), "max " + max);
                assertEquals(max, b.tokens().length);
            }
            String full = plain.generate(new GenerationRequest(prompt, 40, Sampler.of(0f, 1f, 0), List.of(), true), TokenListener.NONE).text();
            String stop = full.substring(20, 26);
            GenerationResult a = plain.generate(new GenerationRequest(prompt, 40, Sampler.of(0f, 1f, 0), List.of(stop), true), TokenListener.NONE);
            GenerationResult b = spec.generate(new GenerationRequest(prompt, 40, Sampler.of(0f, 1f, 0), List.of(stop), true), TokenListener.NONE);
            assertEquals(a.text(), b.text());
            assertEquals(FinishReason.STOP, b.finishReason());
            // a listener that cancels mid-run
            int[] seen = {0};
            GenerationResult c = spec.generate(new GenerationRequest(prompt, 40, Sampler.of(0f, 1f, 0), List.of(), true),
                    (t, text) -> ++seen[0] < 7);
            assertEquals(FinishReason.CANCELLED, c.finishReason());
            assertEquals(7, c.tokens().length);
        }
    }
}
