package dev.enclave.runtime.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.backend.KvFormat;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.backend.KvType;
import dev.enclave.runtime.model.TransformerModel;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** Adaptive KV types on a real model (tinystories-hd64): the budget holds, and fewer bits cost more divergence. */
class KvCalibrationTest {

    @Test
    void plansFitTheirBudgetAndLowerBitsCostMore() throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            int layers = m.config().blockCount(), kvDim = m.config().kvDim(), headDim = m.config().headDim();
            KvCalibration.Result generous = KvCalibration.choose(m, text, 64, 2, 8.5, null);
            for (KvType t : generous.plan().layers()) assertEquals(KvType.parse("q8"), t, "8.5 bits: 8-bit everywhere");
            KvCalibration.Result tight = KvCalibration.choose(m, text, 64, 2, 3.0, null);
            assertTrue(tight.bitsPerValue() <= 3.0 && tight.bitsPerValue() > 2.4, "within the budget: " + tight.bitsPerValue());
            assertEquals(tight.bitsPerValue(), tight.plan().bitsPerValue(layers, kvDim, headDim), 1e-9);
            assertEquals(layers, tight.plan().layers().size());
            // 2-bit rows disturb the output more than 4-bit ones, tensor by tensor
            int more = 0;
            for (double[][] layer : tight.kld()) for (double[] side : layer) if (side[3] > side[1]) more++;
            assertTrue(more >= 2 * layers - 1, more + " of " + 2 * layers);
            // the plan round-trips through its text form, which --kv-type takes
            assertEquals(tight.plan(), KvPlan.parse(tight.plan().toString()));
            KvCalibration.Result floor = KvCalibration.choose(m, text, 64, 2, 2.0, null);
            for (KvType t : floor.plan().layers()) {
                assertTrue(t.keys() == KvFormat.Q2 && t.values() == KvFormat.Q2, "below what 2 bits give: the lowest level, " + t);
            }
        }
    }

    @Test
    void perHeadFormatsAllAlikeAreThatFormat() throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            double[] uniform = new double[1], perHead = new double[1];
            Perplexity.run(m, KvPlan.parse("q4r/q2r"), text, 64, 64, 2, null, (logits, off, n, target) -> uniform[0] += logits[off + target]);
            Perplexity.run(m, KvPlan.parse("q4r|q4r/q2r|q2r"), text, 64, 64, 2, null, (logits, off, n, target) -> perHead[0] += logits[off + target]);
            assertEquals(uniform[0], perHead[0], 0.0, "two KV heads stored apart in the same formats read back bit for bit");
            double[] mixed = new double[1];
            Perplexity.run(m, KvPlan.parse("q4r|q2r/q2r|q2r"), text, 64, 64, 2, null, (logits, off, n, target) -> mixed[0] += logits[off + target]);
            assertTrue(mixed[0] != uniform[0], "one head at 2 bits is another cache");
        }
    }

    @Test
    void perHeadPlansChooseEachHeadsFormat() throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            int layers = m.config().blockCount(), kvDim = m.config().kvDim(), headDim = m.config().headDim(), heads = m.config().headCountKv();
            KvCalibration.Result r = KvCalibration.choose(m, text, 64, 2, 3.0, true, null);
            assertTrue(r.bitsPerValue() <= 3.0 && r.bitsPerValue() > 2.4, "within the budget: " + r.bitsPerValue());
            assertEquals(2 * heads, r.kld()[0].length, "a unit per head of keys and of values");
            for (KvType t : r.plan().layers()) {
                assertEquals(heads, t.keyHeads().size());
                assertEquals(heads, t.valueHeads().size());
                assertTrue(t.rotateKeys() && t.rotateValues(), "the rotated ladder: " + t);
            }
            assertEquals(r.plan(), KvPlan.parse(r.plan().toString()), "round trip through its text form: " + r.plan());
            assertEquals(r.bitsPerValue(), r.plan().bitsPerValue(layers, kvDim, headDim), 1e-9);
        }
    }
}
