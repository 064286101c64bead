package dev.enclave.rag.embed;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class OnnxEmbedderTest {

    static OnnxEmbedder minilm;

    @BeforeAll
    static void load() {
        minilm = new OnnxEmbedder(EmbeddingModel.MINILM_L6_Q, Path.of("target/native"), 2);
    }

    @AfterAll
    static void close() {
        minilm.close();
    }

    static double cos(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    @Test
    void vectorsAreUnitLengthAndSemantic() {
        List<float[]> v = minilm.embedDocuments(List.of(
                "The cat sits on the mat.",
                "A kitten is resting on a rug.",
                "Quarterly revenue of the bank increased by four percent."));
        assertEquals(3, v.size());
        for (float[] x : v) {
            assertEquals(384, x.length);
            assertEquals(1.0, cos(x, x), 1e-4);
        }
        assertTrue(cos(v.get(0), v.get(1)) > cos(v.get(0), v.get(2)) + 0.2,
                "paraphrase must be closer than an unrelated sentence");
    }

    @Test
    void aTextEmbedsTheSameWhateverItIsEmbeddedWith() {
        String shortText = "Insulin lowers blood glucose.";
        String longText = "Insulin is a peptide hormone produced by beta cells of the pancreatic islets. ".repeat(6);
        float[] alone = minilm.embedDocuments(List.of(shortText)).getFirst();
        float[] padded = minilm.embedDocuments(List.of(longText, shortText)).get(1);
        // each input runs alone (int8 dynamic quantization would otherwise tie a vector to its batch)
        assertArrayEquals(alone, padded, 0f);
    }

    @Test
    void longInputIsTruncatedAtTheModelLimit() {
        String huge = "word ".repeat(5000);
        assertTrue(minilm.countTokens(huge) >= 5000);
        float[] v = minilm.embedDocuments(List.of(huge)).getFirst();
        assertEquals(384, v.length);
        assertFalse(Float.isNaN(v[0]));
    }

    @Test
    void aCountedTextIsNotTokenizedAgainAndEmbedsTheSame() {
        String[] texts = {
                "# Insulin\nInsulin lowers blood glucose: 7.5 mmol/L in über-fast response.",
                "Ünïcödé, emoji \uD83D\uDE00 and CJK 胰岛素 survive the split.",
                "word ".repeat(400) // longer than the window: the reused ids are truncated like fresh ones
        };
        for (String t : texts) {
            float[] fresh = minilm.embedDocuments(List.of(t)).getFirst();
            int n = minilm.countTokens(t);
            long[] reused = minilm.tokenIds(t); // taken from the count
            assertEquals(n + 2, reused.length, t);
            long[] again = minilm.tokenIds(t); // the count was used up: tokenized afresh
            assertArrayEquals(again, reused, t);
            minilm.countTokens(t);
            float[] viaCount = minilm.embedDocuments(List.of(t)).getFirst();
            assertArrayEquals(fresh, viaCount, 0f, t);
        }
    }
}
