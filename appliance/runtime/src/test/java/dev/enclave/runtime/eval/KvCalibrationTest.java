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
}
