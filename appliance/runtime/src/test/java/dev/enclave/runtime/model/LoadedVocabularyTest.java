package dev.enclave.runtime.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.gguf.GGUFFile;
import org.junit.jupiter.api.Test;

/**
 * A loaded BPE model lets go of the merge strings (its tokenizer keeps a compact id-pair table) and still encodes
 * exactly as the reference tokenization that ships with the vocabulary fixtures does.
 */
class LoadedVocabularyTest {

    @Test
    void mergeStringsAreDroppedAndEncodingIsUnchanged() throws Exception {
        try (GGUFFile file = GGUFFile.open(SharedData.model("syn-llama3-bpe-Q4_0.gguf"))) {
            assertTrue(file.has("tokenizer.ggml.merges"));
        }
        try (TransformerModel m = TransformerModel.load(SharedData.model("syn-llama3-bpe-Q4_0.gguf"))) {
            assertFalse(m.gguf().has("tokenizer.ggml.merges"), "the merge strings are released after the tokenizer is built");
            assertFalse(m.gguf().metadata().containsKey("tokenizer.ggml.merges"));
            // the fixture's own prompt and llama.cpp's tokens for it
            var ref = SharedData.json(SharedData.model("syn-llama3-bpe-Q4_0.ref.json"));
            assertArrayEquals(SharedData.ints(ref.get("prompt_tokens")), m.tokenizer().encode(ref.get("prompt").asText(), true, false));
        }
    }
}
