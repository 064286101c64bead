package dev.enclave.server.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.enclave.runtime.chat.ChatTemplate;
import dev.enclave.runtime.generate.FinishReason;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.Optional;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * An earlier answer sent back as text is read as the tokens it was generated as, even when those are not what the
 * tokenizer would choose for the text; the text is unchanged, and anything else is tokenized as before.
 */
class AnswerTokensTest {

    @Test
    void aKnownAnswerIsSplicedAsItsGeneratedTokens() throws Exception {
        try (TransformerModel m = TransformerModel.load(dev.enclave.server.api.ChatTemplateServingTest.qwen())) {
            Tokenizer tok = m.tokenizer();
            Optional<ChatTemplate> template = ChatTemplate.fromGGUF(m.gguf(), tok);
            assertTrue(template.isPresent());
            String answer = "Hello there, world";
            // one token per character: a valid encoding of the text, but not the tokenizer's own
            int[] generated = answer.chars().flatMap(c -> IntStream.of(tok.encode(Character.toString(c), false, false))).toArray();
            int[] canonicalAnswer = tok.encode(answer, false, false);
            assertFalse(Arrays.equals(generated, canonicalAnswer), "the test needs a non-canonical encoding");
            assertEquals(answer, tok.decode(generated));

            JsonNode messages = new ObjectMapper().readTree("[{\"role\":\"user\",\"content\":\"Hi\"},"
                    + "{\"role\":\"assistant\",\"content\":\"" + answer + "\"},{\"role\":\"user\",\"content\":\"More\"}]");
            int[] plain = ChatPrompt.tokens(messages, null, template, tok);

            AnswerTokens answers = new AnswerTokens(tok);
            assertArrayEquals(plain, ChatPrompt.tokens(messages, null, template, tok, answers), "nothing recorded yet");
            int[] withEos = Arrays.copyOf(generated, generated.length + 1);
            withEos[generated.length] = tok.eos();
            answers.record(new GenerationResult(withEos, answer, FinishReason.STOP, 10, 0, 0), tok);
            assertArrayEquals(generated, answers.tokensOf(answer, tok), "the end-of-generation token is left out");

            int[] spliced = ChatPrompt.tokens(messages, null, template, tok, answers);
            assertEquals(tok.decode(plain), tok.decode(spliced), "the same text");
            assertTrue(indexOf(spliced, generated) > 0, "the generated tokens are in the prompt");
            assertEquals(-1, indexOf(plain, generated));
            // before and after the answer, the tokenizer's own choice
            int at = indexOf(spliced, generated);
            assertArrayEquals(Arrays.copyOf(plain, at), Arrays.copyOf(spliced, at));
            int tail = spliced.length - at - generated.length;
            assertArrayEquals(Arrays.copyOfRange(plain, plain.length - tail, plain.length),
                    Arrays.copyOfRange(spliced, spliced.length - tail, spliced.length));

            // tokens that do not decode to the text (a stop string cut it short) are not kept
            AnswerTokens other = new AnswerTokens(tok);
            other.record(new GenerationResult(generated, "Hello", FinishReason.STOP, 10, 0, 0), tok);
            assertNull(other.tokensOf("Hello", tok));
        }
    }

    /** Without a chat template (the bundled story model) the plain rendering is spliced the same way, text unchanged. */
    @Test
    void thePlainRenderingOfABaseModelKeepsItsText() throws Exception {
        java.nio.file.Path stories = java.nio.file.Path.of(System.getProperty("enclave.shared.dir", "../../../shared"),
                "fixtures/models/stories260K.gguf").toAbsolutePath();
        try (TransformerModel m = TransformerModel.load(stories)) {
            Tokenizer tok = m.tokenizer();
            String answer = "Once upon a time there was a cat.";
            int[] generated = tok.encode(answer, false, false);
            JsonNode messages = new ObjectMapper().readTree("[{\"role\":\"user\",\"content\":\"Tell a story\"},"
                    + "{\"role\":\"assistant\",\"content\":\"" + answer + "\"},{\"role\":\"user\",\"content\":\"More\"}]");
            int[] plain = ChatPrompt.tokens(messages, null, Optional.empty(), tok);
            AnswerTokens answers = new AnswerTokens(tok);
            answers.record(new GenerationResult(generated, tok.decode(generated), FinishReason.LENGTH, 5, 0, 0), tok);
            int[] spliced = ChatPrompt.tokens(messages, null, Optional.empty(), tok, answers);
            assertEquals(tok.decode(plain), tok.decode(spliced), "the same text");
        }
    }

    @Test
    void anotherModelsTokensAreIgnored() throws Exception {
        try (TransformerModel a = TransformerModel.load(dev.enclave.server.api.ChatTemplateServingTest.qwen());
             TransformerModel b = TransformerModel.load(dev.enclave.server.api.ChatTemplateServingTest.qwen())) {
            AnswerTokens answers = new AnswerTokens(a.tokenizer());
            int[] t = a.tokenizer().encode("Hello there", false, false);
            answers.record(new GenerationResult(t, "Hello there", FinishReason.LENGTH, 3, 0, 0), b.tokenizer());
            assertNull(answers.tokensOf("Hello there", a.tokenizer()), "recorded with another model's tokenizer");
            answers.record(new GenerationResult(t, "Hello there", FinishReason.LENGTH, 3, 0, 0), a.tokenizer());
            assertNull(answers.tokensOf("Hello there", b.tokenizer()), "asked with another model's tokenizer");
            assertArrayEquals(t, answers.tokensOf("Hello there", a.tokenizer()));
        }
    }

    /** Many or long answers: the oldest go first, within both the count and the byte budget. */
    @Test
    void theOldestAnswersGoFirst() throws Exception {
        try (TransformerModel m = TransformerModel.load(dev.enclave.server.api.ChatTemplateServingTest.qwen())) {
            Tokenizer tok = m.tokenizer();
            AnswerTokens answers = new AnswerTokens(tok);
            for (int i = 0; i < 1500; i++) {
                String text = "answer " + i;
                answers.record(new GenerationResult(tok.encode(text, false, false), text, FinishReason.LENGTH, 1, 0, 0), tok);
            }
            assertEquals(1024, answers.size());
            assertNull(answers.tokensOf("answer 0", tok));
            assertTrue(answers.tokensOf("answer 1499", tok) != null);
            String big = "word ".repeat(300_000); // ~2.4 MB of UTF-16 text plus its tokens
            int[] bigTokens = tok.encode(big, false, false);
            for (int i = 0; i < 4; i++) {
                String text = big + i;
                int[] t = Arrays.copyOf(bigTokens, bigTokens.length + 1);
                t[bigTokens.length] = tok.encode(Integer.toString(i), false, false)[0];
                answers.record(new GenerationResult(t, tok.decode(t), FinishReason.LENGTH, 1, 0, 0), tok);
            }
            assertTrue(answers.size() < 1024, "long answers evicted short ones: " + answers.size());
            assertTrue(answers.tokensOf(tok.decode(bigTokens) + tok.decode(new int[] {tok.encode("3", false, false)[0]}), tok) != null,
                    "the newest long answer is kept");
            assertNull(answers.tokensOf(tok.decode(bigTokens) + tok.decode(new int[] {tok.encode("0", false, false)[0]}), tok),
                    "the oldest long answer made room");
        }
    }

    private static int indexOf(int[] hay, int[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }
}
