package dev.enclave.runtime.synth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.chat.ChatTemplate;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code synth} with a real vocabulary: the smallest real shape (Qwen2.5-0.5B, Q4_0) loads and computes finite
 * logits, and a chat model's template comes with it when the vocabulary file has none, so chat benchmarks prompt
 * it as clients prompt the real model.
 */
class SyntheticModelTest {

    @TempDir
    Path dir;

    @Test
    void qwenShapeLoadsWithItsChatTemplate() throws Exception {
        Path out = dir.resolve("qwen.gguf");
        new SyntheticModel(ModelShape.QWEN2_5_0_5B, SyntheticModel.FileType.Q4_0, 1).write(out, SharedData.vocab("ggml-vocab-qwen2.gguf"));
        assertTrue(Files.size(out) > 250_000_000L, "a real-size file: " + Files.size(out));
        try (TransformerModel m = TransformerModel.load(out)) {
            assertEquals(896, m.config().embeddingLength());
            assertEquals(151936, m.config().vocabularySize());
            Tokenizer tok = m.tokenizer();
            ChatTemplate t = ChatTemplate.fromGGUF(m.gguf(), tok).orElseThrow();
            String rendered = t.render(List.of(Map.of("role", "user", "content", "Hi")), List.of(), true);
            assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", rendered);
            int[] prompt = ChatTemplate.tokenize(tok, rendered, t.bosToken());
            float[] logits = m.ingest(m.newState(64), prompt);
            for (float f : logits) assertTrue(Float.isFinite(f));
        }
    }

    @Test
    void llamaTemplateOnlyWithItsSpecialTokens() throws Exception {
        String[] llama3;
        try (GGUFFile v = GGUFFile.open(SharedData.vocab("ggml-vocab-llama-bpe.gguf"))) {
            llama3 = v.getArray("tokenizer.ggml.tokens").asStrings();
        }
        assertEquals(SyntheticModel.LLAMA3_CHAT_TEMPLATE, SyntheticModel.chatTemplate("llama", llama3));
        assertNull(SyntheticModel.chatTemplate("qwen2", llama3), "no ChatML tokens in Llama 3's vocabulary");
        assertNull(SyntheticModel.chatTemplate("llama", new String[] {"a", "b", "<|begin_of_text|>"}));
    }
}
