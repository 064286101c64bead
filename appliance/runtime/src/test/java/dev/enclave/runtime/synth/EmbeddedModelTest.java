package dev.enclave.runtime.synth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A trained model written inside a larger shape computes what it computes: tinystories-hd64 (dim 256, 4 layers, 4/2
 * heads, ffn 768) inside dim 512, 6 layers, 16/4 heads, ffn 1024 gives the same logits up to float16 rounding of
 * its weights and the same greedy story.
 */
class EmbeddedModelTest {

    @TempDir
    Path dir;

    @Test
    void largerShapeComputesTheSmallModel() throws Exception {
        Path small = SharedData.model("tinystories-hd64-F32.gguf");
        Path out = dir.resolve("embedded.gguf");
        new EmbeddedModel(new EmbeddedModel.Shape("test", "llama", 512, 6, 16, 4, 64, 1024), SyntheticModel.FileType.F16)
                .write(small, out);
        try (TransformerModel a = TransformerModel.load(small); TransformerModel b = TransformerModel.load(out)) {
            assertEquals(512, b.config().embeddingLength());
            assertEquals(6, b.config().blockCount());
            int[] prompt = a.tokenizer().encode("Once upon a time, there was a little dog named Max. He", true, false);
            assertArrayEquals(prompt, b.tokenizer().encode("Once upon a time, there was a little dog named Max. He", true, false));
            InferenceState sa = a.newState(128), sb = b.newState(128);
            float[] la = a.ingest(sa, prompt).clone(), lb = b.ingest(sb, prompt).clone();
            double maxDiff = 0, spread = 0;
            for (int i = 0; i < la.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(la[i] - lb[i]));
                spread = Math.max(spread, Math.abs(la[i]));
            }
            assertTrue(maxDiff < 0.02 * spread, "logits differ by " + maxDiff + " (largest " + spread + ")");
            int[] ga = new int[24], gb = new int[24];
            for (int i = 0; i < ga.length; i++) {
                ga[i] = argmax(la);
                gb[i] = argmax(lb);
                la = a.forward(sa, ga[i]);
                lb = b.forward(sb, gb[i]);
            }
            assertArrayEquals(ga, gb, "greedy continuation");
        }
    }

    @Test
    void refusesAShapeTooSmall() {
        Path small = SharedData.model("tinystories-hd64-F32.gguf");
        var narrow = new EmbeddedModel(new EmbeddedModel.Shape("narrow", "llama", 512, 6, 8, 2, 64, 512), SyntheticModel.FileType.F16);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> narrow.write(small, dir.resolve("x.gguf")));
        assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
