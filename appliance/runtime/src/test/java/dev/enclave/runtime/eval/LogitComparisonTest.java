package dev.enclave.runtime.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.model.TransformerModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A saved reference compared with the same model's run reads no divergence (the reference is float32: only its
 * rounding), and with a 4-bit copy of the model a clear one; a reference of another context or text is refused.
 */
class LogitComparisonTest {

    @TempDir
    Path dir;

    @Test
    void selfComparisonIsZeroAndFourBitsIsNot() throws Exception {
        String text = Files.readString(SharedData.dir().resolve("datasets/text/tinystories-valid-801-900.txt"));
        RuntimeOptions o = RuntimeOptions.defaults().withWarmup(false);
        Path ref = dir.resolve("f32.logits");
        double f32Ppl;
        try (TransformerModel m = TransformerModel.load(SharedData.model("tinystories-hd64-F32.gguf"), o)) {
            int vocab = m.config().vocabularySize();
            try (LogitComparison.Writer w = new LogitComparison.Writer(ref, vocab, 256)) {
                f32Ppl = Perplexity.run(m, text, 256, 512, 4, null, w).ppl();
            }
            assertEquals(16 + 8 + 4L * 127 * (4 + 4L * vocab), Files.size(ref), "header, then token and log-probs per position");
            try (LogitComparison.Reader r = new LogitComparison.Reader(ref, vocab, 256)) {
                Perplexity.run(m, text, 256, 512, 4, null, r);
                LogitComparison.Result c = r.result();
                assertEquals(4 * 127, c.positions());
                assertTrue(c.kldMean() < 1e-7 && c.kldP999() < 1e-6, "self KLD " + c.kldMean());
                assertEquals(100.0, c.sameTopPct());
                assertEquals(f32Ppl, c.referencePpl(), f32Ppl * 1e-6);
            }
            assertThrows(IllegalArgumentException.class, () -> new LogitComparison.Reader(ref, vocab, 128), "another --ctx");
            try (LogitComparison.Reader r = new LogitComparison.Reader(ref, vocab, 256)) {
                Perplexity.run(m, text.substring(2000), 256, 512, 4, null, r);
                assertThrows(IllegalArgumentException.class, r::result, "another text");
            }
        }
        try (TransformerModel q4 = TransformerModel.load(SharedData.model("tinystories-hd64-Q4_0.gguf"), o);
             LogitComparison.Reader r = new LogitComparison.Reader(ref, q4.config().vocabularySize(), 256)) {
            double ppl = Perplexity.run(q4, text, 256, 512, 4, null, r).ppl();
            LogitComparison.Result c = r.result();
            assertTrue(c.kldMean() > 1e-3 && c.kldP99() > c.kldMean() && c.kldP999() >= c.kldP99(), "4-bit weights diverge: " + c);
            assertTrue(c.sameTopPct() > 80 && c.sameTopPct() < 100, "top token mostly kept: " + c.sameTopPct());
            assertTrue(ppl != c.referencePpl());
        }
    }
}
