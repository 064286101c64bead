package dev.enclave.runtime.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.quant.Quantizer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** dot4 and dot8 (one pass over the weights for several tokens) agree with the single-token dot for every fused type. */
class MultiTokenDotTest {

    static FloatTensor tensor(GGMLType type, float[] w) {
        byte[] bytes = Quantizer.quantize(type, w, w.length);
        MemorySegment seg = Arena.ofAuto().allocate(bytes.length, 64);
        seg.copyFrom(MemorySegment.ofArray(bytes));
        FloatTensor t = FloatTensor.of(type, seg, w.length);
        return t instanceof Q6_KTensor q6 ? Int8RowsTensor.fromQ6_K(q6, Arena.ofAuto()) : t;
    }

    @Test
    void severalTokensMatchOneAtATime() {
        Random r = new Random(3);
        int cols = 512, rows = 3, tokens = 8, xs = cols + 32; // strided activations, as in a batch buffer
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        float[] x = new float[tokens * xs];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (GGMLType type : new GGMLType[] {GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q6_K, GGMLType.F32}) {
            FloatTensor t = tensor(type, w);
            for (int row = 0; row < rows; row++) {
                long off = (long) row * cols;
                float[] eight = new float[tokens * 5];
                t.dot8(off, x, 0, xs, cols, eight, 1, 5);
                float[] four = new float[tokens * 3];
                t.dot4(off, x, 0, xs, 2 * xs, 3 * xs, cols, four, 0, 3);
                for (int k = 0; k < tokens; k++) {
                    float one = t.dot(off, x, k * xs, cols);
                    assertEquals(one, eight[1 + k * 5], 1e-3f * Math.max(1, Math.abs(one)), type + " dot8 token " + k);
                    if (k < 4) assertEquals(one, four[k * 3], 1e-3f * Math.max(1, Math.abs(one)), type + " dot4 token " + k);
                }
            }
        }
    }
}
