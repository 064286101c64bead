package dev.enclave.runtime.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.backend.KvType;
import dev.enclave.runtime.model.TransformerModel;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** KIVI's recent window: the ring's positions, the type's spelling, and what it does on a real model. */
class RecentWindowTest {

    @Test
    void theRingKnowsWhichPositionsItHolds() {
        RecentRows r = new RecentRows(4, 2);
        for (int p = 0; p < 10; p++) r.put(p, new float[] {p, -p}, 0, new float[] {2 * p, 0}, 0);
        for (int p = 0; p < 6; p++) assertFalse(r.has(p), "position " + p + " left the window");
        for (int p = 6; p < 10; p++) {
            assertTrue(r.has(p));
            assertEquals(p, r.keys()[r.offset(p)]);
            assertEquals(2 * p, r.values()[r.offset(p)]);
        }
        r.put(7, new float[] {70, 0}, 0, new float[] {0, 0}, 0); // a rewound sequence writes position 7 again
        assertFalse(r.has(11));
        assertTrue(r.has(7) && r.keys()[r.offset(7)] == 70f);
        r.clear();
        for (int p = 0; p < 10; p++) assertFalse(r.has(p), "a context shift forgets every position");
    }

    @Test
    void theTypeSaysItsWindowAndRefusesOneWhereNothingIsLost() {
        KvType t = KvType.parse("q8/q2r+16");
        assertEquals(16, t.window());
        assertEquals("q8/q2r+16", t.toString());
        assertEquals(t, KvPlan.parse(t.toString()).type(0));
        assertEquals(0, KvType.parse("q2r").window());
        for (String bad : new String[] {"q2r+0", "q2r+x", "q2r+5000"}) {
            assertThrows(IllegalArgumentException.class, () -> KvType.parse(bad), bad);
        }
        IllegalArgumentException f32 = assertThrows(IllegalArgumentException.class, () -> KvType.parse("f32+8"));
        assertTrue(f32.getMessage().contains("recent window"), f32.getMessage());
    }

    @Test
    void aWindowOfFullPrecisionTokensLowersTheDivergenceOfTwoBitRows() throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"))) {
            double plain = kld(m, "q2r", text), windowed = kld(m, "q2r+32", text), all = kld(m, "q2r+128", text);
            assertTrue(windowed < plain * 0.9, "q2r " + plain + ", q2r+32 " + windowed);
            assertEquals(0, all, 1e-6, "a window over the whole chunk is the float cache (to float rounding)");
        }
    }

    private static double kld(TransformerModel m, String type, String text) {
        return dev.enclave.runtime.eval.KvDivergence.kld(m, KvPlan.parse(type), text, 128, 3);
    }
}
