package dev.enclave.runtime.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.backend.KvCode;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.generate.ContextShift;
import dev.enclave.runtime.model.TransformerModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transform-coded cache on a real model (tinystories-hd64): calibrated on text the model writes, it fits its budget
 * and disturbs the output less than the codebook types of about the same size; saved and read back it is the same
 * cache; a code for another model is refused; a context shift leaves its keys as they are.
 */
class KvCodeCalibrationTest {

    @Test
    void aSelfCalibratedCodeBeatsPlainLowBitTypesAtTheSameSize(@TempDir Path dir) throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            int layers = m.config().blockCount(), kvDim = m.config().kvDim(), headDim = m.config().headDim();
            int[] steps = {0};
            KvCode code = KvCodeCalibration.selfCalibrated(m, 8, 128, 2.16, 3.16, false, 1, "t", (done, total) -> steps[0] = done);
            assertEquals(8 + 2 * layers, steps[0], "8 sequences, then each layer's keys and values measured");
            KvPlan plan = code.plan();
            double bits = plan.bitsPerValue(layers, kvDim, headDim);
            assertTrue(bits <= 2.66 && bits > 2.5, "within the budget: " + bits);
            assertEquals(code.bitsPerValue(), bits, 1e-9);
            double[] split = code.codeBits();
            assertTrue(split[1] > split[0], "the values cost this model more than the keys: " + split[0] + " / " + split[1]);

            double f32 = kld(m, KvPlan.F32, text), coded = kld(m, plan, text), q2 = kld(m, KvPlan.parse("q2r"), text),
                    q3q2 = kld(m, KvPlan.parse("q3r/q2r"), text);
            assertEquals(0, f32, 1e-12);
            assertTrue(coded < q2 / 3 && coded < q3q2 / 2, "transform-coded " + coded + " vs q2r (2.5 bits) " + q2 + ", q3r/q2r (3 bits) " + q3q2);

            Path file = dir.resolve("hd64.kvc");
            code.write(file);
            KvPlan back = KvPlan.parse("tc:" + file);
            assertEquals("tc:" + file, back.toString());
            assertEquals(coded, kld(m, KvPlan.parse(back.toString()), text), 0.0, "the plan's text names the file again");
            assertEquals(coded, kld(m, back, text), 0.0, "read back, the same cache bit for bit");

            KvCode fromText = KvCodeCalibration.textCalibrated(m, text, 128, 4, 2.16, 3.16, true, "text", null);
            double[] fixed = fromText.codeBits();
            assertEquals(2.16, fixed[0], 0.12, "keys keep their share when the split is fixed");
            assertEquals(3.16, fixed[1], 0.12);

            // context shift: the coded keys carry no position, so shifting leaves them and reading turns them right
            Perplexity.Streamed s = Perplexity.stream(m, plan, text, 64, 300, new ContextShift(4, false), null);
            Perplexity.Streamed ref = Perplexity.stream(m, KvPlan.F32, text, 64, 300, new ContextShift(4, false), null);
            assertTrue(s.shifts() > 3, "shifted " + s.shifts());
            assertEquals(ref.ppl(), s.ppl(), ref.ppl() * 0.03, "a shifted coded cache reads like the shifted f32 one");
        }
        try (TransformerModel other = TransformerModel.load(SharedData.model("TinyStories-656K-F32.gguf"))) {
            Path file = dir.resolve("hd64.kvc");
            KvPlan foreign = KvPlan.parse("tc:" + file);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.newState(64, foreign));
            assertTrue(e.getMessage().contains("hd64.kvc"), e.getMessage());
        }
    }

    /** Mean KL divergence from the f32 cache over 4 chunks of 128 tokens. */
    private static double kld(TransformerModel m, KvPlan plan, String text) {
        return KvDivergence.kld(m, plan, text, 128, 4);
    }
}
