package dev.enclave.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.gguf.GGUFFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * llama.cpp's own tokenizer test cases on real vocabularies: every case of {@code .inp} must tokenize
 * (add_special = false, parse_special = false) to exactly the ids in {@code .out}.
 */
class VocabReferenceTest {

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf"})
    void tokenizesLikeLlamaCpp(String vocab) throws Exception {
        Path file = SharedData.vocab(vocab);
        List<String> inputs = cases(Files.readString(file.resolveSibling(vocab + ".inp"), StandardCharsets.UTF_8));
        List<String> outputs = Files.readAllLines(file.resolveSibling(vocab + ".out"), StandardCharsets.UTF_8);
        assertEquals(inputs.size(), outputs.size(), "cases in .inp and .out");
        try (GGUFFile gguf = GGUFFile.open(file)) {
            Tokenizer tok = Tokenizer.fromGGUF(gguf);
            List<String> failures = new ArrayList<>();
            for (int i = 0; i < inputs.size(); i++) {
                int[] expected = outputs.get(i).isBlank() ? new int[0]
                        : Arrays.stream(outputs.get(i).trim().split("\\s+")).mapToInt(Integer::parseInt).toArray();
                int[] got = tok.encode(inputs.get(i), false, false);
                if (!Arrays.equals(expected, got)) {
                    failures.add("case " + i + " " + quote(inputs.get(i)) + ": expected " + Arrays.toString(expected)
                            + " got " + Arrays.toString(got));
                }
            }
            assertEquals(List.of(), failures);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-llama-spm.gguf"})
    void decodesBackToTheText(String vocab) throws Exception {
        try (GGUFFile gguf = GGUFFile.open(SharedData.vocab(vocab))) {
            Tokenizer tok = Tokenizer.fromGGUF(gguf);
            String text = "Hello wörld! 🦙 tabs\tand\nnewlines, 日本語";
            int[] ids = tok.encode(text, true, false);
            assertEquals(tok.bos(), ids[0]);
            assertEquals(" " + text, tok.decode(ids)); // SentencePiece adds the leading space
            assertArrayEquals(new int[] {tok.bos()}, tok.encode("", true, false));
            assertArrayEquals(new int[0], tok.encode("", false, false));
            // parse_special turns the text of a control token into that token
            int[] special = tok.encode("<s>hi", false, true);
            assertEquals(tok.bos(), special[0]);
        }
    }

    static List<String> cases(String inp) {
        String[] parts = inp.split("\n__ggml_vocab_test__\n", -1);
        List<String> out = new ArrayList<>(Arrays.asList(parts));
        // the file ends with a separator line: drop the empty tail
        String last = out.getLast();
        if (last.equals("__ggml_vocab_test__\n") || last.equals("__ggml_vocab_test__") || last.isEmpty()) {
            out.removeLast();
        }
        return out;
    }

    private static String quote(String s) {
        return "\"" + s.replace("\n", "\\n").replace("\t", "\\t") + "\"";
    }
}
