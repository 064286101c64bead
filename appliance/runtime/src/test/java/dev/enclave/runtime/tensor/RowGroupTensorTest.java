package dev.enclave.runtime.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The row-group repackings (Q4_0, Q4_K, Q6_K, Q8_0) and their kernels: values equal the originals bit for bit; the integer
 * products equal a double-precision sum over the same quantized activations; the 16-bit block sums are exact at
 * the extremes where the raw sum wraps around.
 */
class RowGroupTensorTest {

    static final int ROWS = 96;
    static final int COLS = 512;

    @ParameterizedTest
    @EnumSource(value = GGMLType.class, names = {"Q4_0", "Q4_K"})
    void repackedValuesEqualTheOriginalsAndProductsAreRight(GGMLType type) {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        SplittableRandom r = new SplittableRandom(type.id);
        FloatTensor src = randomTensor(type, r);
        Q4RowGroupTensor p = Q4RowGroupTensor.repack(src, ROWS, COLS, Arena.ofAuto());
        for (long i = 0; i < (long) ROWS * COLS; i++) {
            assertEquals(Float.floatToIntBits(src.getFloat(i)), Float.floatToIntBits(p.getFloat(i)), type + " value " + i);
        }
        float[] row = new float[COLS];
        p.copyTo(5L * COLS, row, 0, COLS);
        for (int j = 0; j < COLS; j++) assertEquals(src.getFloat(5L * COLS + j), row[j]);

        int tokens = 11; // two calls of the 4-token kernel, then 3 of the 1-token one
        float[] x = new float[tokens * COLS];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * (i % 97 == 0 ? 20 : 1);
        Q8Activations a = new Q8Activations();
        a.quantize(x, 0, COLS, COLS, tokens);
        float[] out = new float[tokens * ROWS];
        p.multiply4(a, 0, 0, p.groups(), out, 0, ROWS);
        p.multiply4(a, 4, 0, p.groups(), out, 4 * ROWS, ROWS);
        for (int t = 8; t < tokens; t++) p.multiply(a, t, 0, p.groups(), out, t * ROWS);
        assertProductsExact(src, a, out, tokens, type.toString());
    }

    /** Q8_0 in row groups ({@link Q8RowGroupTensor}): exact values, the integer products of both kernels. */
    @Test
    void q8RepackedValuesAndProducts() {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        SplittableRandom r = new SplittableRandom(8);
        FloatTensor src = randomTensor(GGMLType.Q8_0, r);
        Q8RowGroupTensor p = Q8RowGroupTensor.repack(src, ROWS, COLS, Arena.ofAuto());
        for (long i = 0; i < (long) ROWS * COLS; i++) {
            assertEquals(Float.floatToIntBits(src.getFloat(i)), Float.floatToIntBits(p.getFloat(i)), "Q8_0 value " + i);
        }
        int tokens = 7;
        float[] x = new float[tokens * COLS];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * (i % 83 == 0 ? 25 : 1);
        Q8Activations a = new Q8Activations();
        a.quantize(x, 0, COLS, COLS, tokens);
        float[] out = new float[tokens * ROWS];
        p.multiply4(a, 0, 0, p.groups(), out, 0, ROWS);
        for (int t = 4; t < tokens; t++) p.multiply(a, t, 0, p.groups(), out, t * ROWS);
        assertProductsExact(src, a, out, tokens, "Q8_0");
    }

    /**
     * Q8_0 at the extremes: every q = -128 (a value ggml never writes, but a file may hold) or 127 against x = +127 or
     * -127, where a column pair's 16-bit sum reaches 32512 in magnitude; every product must still be exact.
     */
    @Test
    void q8PairSumsAreExactAtTheExtremes() {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        int cols = 128;
        for (int q : new int[] {-128, 127}) {
            for (float sign : new float[] {1f, -1f}) {
                byte[] bytes = new byte[(int) GGMLType.Q8_0.byteSize(32L * cols)];
                short one = Float.floatToFloat16(1f);
                for (int b = 0; b < bytes.length / 34; b++) {
                    bytes[b * 34] = (byte) one;
                    bytes[b * 34 + 1] = (byte) (one >> 8);
                    for (int j = 0; j < 32; j++) bytes[b * 34 + 2 + j] = (byte) q;
                }
                Q8RowGroupTensor p = Q8RowGroupTensor.repack(new Q8_0Tensor(MemorySegment.ofArray(bytes), 32L * cols), 32, cols, Arena.ofAuto());
                assertUniformProducts(p, cols, sign, q, 1e-5, "q " + q + " x " + sign);
            }
        }
    }

    /** Q6_K in row groups, at 6 bits ({@link Q6RowGroupTensor}) and as int8 ({@link Int8RowGroupTensor}): exact values, the integer products. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
    void q6kRepackedValuesAndProducts(boolean sixBits) {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        SplittableRandom r = new SplittableRandom(6);
        long n = (long) ROWS * COLS;
        byte[] bytes = new byte[(int) GGMLType.Q6_K.byteSize(n)];
        r.nextBytes(bytes);
        for (int b = 0; b < n / 256; b++) { // d is the last half of each 210-byte super-block
            short v = Float.floatToFloat16((float) r.nextDouble(-1, 1) / 512);
            bytes[b * 210 + 208] = (byte) v;
            bytes[b * 210 + 209] = (byte) (v >> 8);
        }
        Q6_KTensor src = new Q6_KTensor(MemorySegment.ofArray(bytes), n);
        RowGroupTensor p = sixBits ? Q6RowGroupTensor.repack(src, ROWS, COLS, Arena.ofAuto()) : Int8RowGroupTensor.repack(src, ROWS, COLS, Arena.ofAuto());
        for (long i = 0; i < n; i++) assertEquals(Float.floatToIntBits(src.getFloat(i)), Float.floatToIntBits(p.getFloat(i)), "Q6_K value " + i);
        float[] x = new float[8 * COLS];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * (i % 89 == 0 ? 30 : 1);
        Q8Activations a = new Q8Activations();
        a.quantize(x, 0, COLS, COLS, 8);
        float[] out = new float[8 * ROWS];
        p.multiply4(a, 0, 0, p.groups(), out, 0, ROWS);
        for (int t = 4; t < 8; t++) p.multiply(a, t, 0, p.groups(), out, t * ROWS);
        assertProductsExact(src, a, out, 8, sixBits ? "Q6_K at 6 bits" : "Q6_K as int8");
    }

    /**
     * Q6_K at 6 bits at the extremes: every q - 32 = 31 or -32 against x = +127 or -127, where an 8-column 16-bit sum
     * reaches 32512 in magnitude (and a 16-column one would overflow); every product must still be exact.
     */
    @Test
    void sixBitSumsAreExactAtTheExtremes() {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        for (int q : new int[] {63, 0}) {
            for (float sign : new float[] {1f, -1f}) {
                int cols = 256;
                byte[] bytes = new byte[(int) GGMLType.Q6_K.byteSize(32L * cols)];
                short one = Float.floatToFloat16(1f);
                for (int b = 0; b < 32; b++) {
                    int at = b * 210;
                    for (int i = 0; i < 128; i++) bytes[at + i] = (byte) ((q & 0xF) | (q & 0xF) << 4); // low 4 bits
                    for (int i = 0; i < 64; i++) bytes[at + 128 + i] = (byte) ((q >> 4) * 0x55); // high 2 bits, 4 per byte
                    for (int i = 0; i < 16; i++) bytes[at + 192 + i] = 1; // scales
                    bytes[at + 208] = (byte) one;
                    bytes[at + 209] = (byte) (one >> 8);
                }
                Q6_KTensor src = new Q6_KTensor(MemorySegment.ofArray(bytes), 32L * cols);
                assertEquals(q - 32, src.getFloat(77), "the hand-made Q6_K block");
                Q6RowGroupTensor p = Q6RowGroupTensor.repack(src, 32, cols, Arena.ofAuto());
                assertUniformProducts(p, cols, sign, q - 32, 1e-4, "q " + q + " x " + sign);
            }
        }
    }

    /** All nibbles 15 (value 7d) times x = +127 per block: the raw sum 32*15*127 wraps 16 bits, the result must not. */
    @Test
    void blockSumsAreExactWhereTheRawSumWraps() {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        for (int nibble : new int[] {15, 0}) {
            byte[] bytes = new byte[(int) GGMLType.Q4_0.byteSize((long) 32 * 64)];
            short one = Float.floatToFloat16(1f);
            for (int b = 0; b < bytes.length / 18; b++) {
                bytes[b * 18] = (byte) one;
                bytes[b * 18 + 1] = (byte) (one >> 8);
                for (int j = 0; j < 16; j++) bytes[b * 18 + 2 + j] = (byte) (nibble | nibble << 4);
            }
            Q4RowGroupTensor p = Q4RowGroupTensor.repack(new Q4_0Tensor(MemorySegment.ofArray(bytes), 32L * 64), 32, 64, Arena.ofAuto());
            float[] x = new float[64];
            java.util.Arrays.fill(x, nibble == 15 ? 1f : -1f); // quantizes to +127 / -127 with d = 1/127 (as half)
            Q8Activations a = new Q8Activations();
            a.quantize(x, 0, 64, 64, 1);
            float[] out = new float[32];
            p.multiply(a, 0, 0, p.groups(), out, 0);
            double expected = 64.0 * (nibble - 8) * a.value(0, 0);
            assertEquals(nibble == 15 ? 127 : -127, Math.round(a.value(0, 0) / Float.float16ToFloat(Float.floatToFloat16(1f / 127))));
            for (float v : out) assertEquals(expected, v, 1e-3 * Math.abs(expected), "nibble " + nibble);
        }
    }

    @Test
    void activationsQuantizeLikeGgml() {
        float[] x = new float[64];
        for (int i = 0; i < 64; i++) x[i] = (i - 20) * 0.37f;
        Q8Activations a = new Q8Activations();
        a.quantize(x, 0, 64, 64, 1);
        for (int b = 0; b < 2; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
            float d = amax / 127f;
            for (int j = 0; j < 32; j++) {
                int expected = Math.round(Math.abs(x[b * 32 + j] / d)) * (x[b * 32 + j] < 0 ? -1 : 1);
                assertEquals(expected * Float.float16ToFloat(Float.floatToFloat16(d)), a.value(0, b * 32 + j), 1e-6);
                assertTrue(Math.abs(expected) <= 127);
            }
        }
    }

    /**
     * A 32-row tensor whose every weight is {@code weight} times x = {@code sign} everywhere (quantized to +-127): every
     * output of both kernels is cols * weight * x.
     */
    static void assertUniformProducts(RowGroupTensor p, int cols, float sign, int weight, double tolerance, String what) {
        float[] x = new float[4 * cols];
        java.util.Arrays.fill(x, sign);
        Q8Activations a = new Q8Activations();
        a.quantize(x, 0, cols, cols, 4);
        float[] out = new float[4 * 32];
        p.multiply4(a, 0, 0, p.groups(), out, 0, 32);
        float[] one = new float[32];
        p.multiply(a, 0, 0, p.groups(), one, 0);
        double expected = (double) cols * weight * a.value(0, 0);
        for (float v : out) assertEquals(expected, v, tolerance * Math.abs(expected), what);
        for (float v : one) assertEquals(expected, v, tolerance * Math.abs(expected), what);
    }

    /** Every output equals the double-precision sum over the weights and the same quantized activations. */
    /**
     * The four-token kernel returns each token's products bit for bit as the one-token kernel does: a batch may run
     * either (a remainder of fewer than four tokens, or before the four-token kernel is compiled), and a token's
     * result must not depend on its batch.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"Q4_0", "Q4_K", "Q6_K6", "Q6_K8", "Q8_0"})
    void fourTokenKernelMatchesTheOneTokenKernelBitForBit(String kind) {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        SplittableRandom r = new SplittableRandom(kind.hashCode());
        RowGroupTensor p = switch (kind) {
            case "Q4_0", "Q4_K" -> Q4RowGroupTensor.repack(randomTensor(GGMLType.valueOf(kind), r), ROWS, COLS, Arena.ofAuto());
            case "Q8_0" -> Q8RowGroupTensor.repack(randomTensor(GGMLType.Q8_0, r), ROWS, COLS, Arena.ofAuto());
            default -> {
                long n = (long) ROWS * COLS;
                byte[] bytes = new byte[(int) GGMLType.Q6_K.byteSize(n)];
                r.nextBytes(bytes);
                for (int b = 0; b < n / 256; b++) {
                    short v = Float.floatToFloat16((float) r.nextDouble(-1, 1) / 512);
                    bytes[b * 210 + 208] = (byte) v;
                    bytes[b * 210 + 209] = (byte) (v >> 8);
                }
                Q6_KTensor src = new Q6_KTensor(MemorySegment.ofArray(bytes), n);
                yield kind.equals("Q6_K6") ? Q6RowGroupTensor.repack(src, ROWS, COLS, Arena.ofAuto())
                        : Int8RowGroupTensor.repack(src, ROWS, COLS, Arena.ofAuto());
            }
        };
        float[] x = new float[4 * COLS];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * (i % 71 == 0 ? 40 : 1);
        Q8Activations a = new Q8Activations();
        a.quantize(x, 0, COLS, COLS, 4);
        float[] four = new float[4 * ROWS];
        float[] one = new float[4 * ROWS];
        p.multiply4(a, 0, 0, p.groups(), four, 0, ROWS);
        for (int t = 0; t < 4; t++) p.multiply(a, t, 0, p.groups(), one, t * ROWS);
        for (int i = 0; i < one.length; i++) {
            assertEquals(Float.floatToIntBits(one[i]), Float.floatToIntBits(four[i]), kind + " token " + i / ROWS + " row " + i % ROWS);
        }
    }

    static void assertProductsExact(FloatTensor src, Q8Activations a, float[] out, int tokens, String what) {
        for (int t = 0; t < tokens; t++) {
            for (int rr = 0; rr < ROWS; rr++) {
                double exact = 0, magnitude = 0;
                for (int j = 0; j < COLS; j++) {
                    double term = (double) src.getFloat((long) rr * COLS + j) * a.value(t, j);
                    exact += term;
                    magnitude += Math.abs(term);
                }
                assertEquals(exact, out[t * ROWS + rr], 1e-5 * magnitude + 1e-6, what + " integer product, token " + t + " row " + rr);
            }
        }
    }

    static FloatTensor randomTensor(GGMLType type, SplittableRandom r) {
        long n = (long) ROWS * COLS;
        byte[] bytes = new byte[(int) type.byteSize(n)];
        r.nextBytes(bytes);
        int halves = type == GGMLType.Q4_K ? 2 : 1; // d (and dmin for Q4_K) at the start of each block
        for (int b = 0; b < n / type.blockSize; b++) {
            for (int h = 0; h < halves; h++) {
                short v = Float.floatToFloat16((float) r.nextDouble(-1, 1) / 32);
                bytes[b * type.blockBytes + 2 * h] = (byte) v;
                bytes[b * type.blockBytes + 2 * h + 1] = (byte) (v >> 8);
            }
        }
        return FloatTensor.of(type, MemorySegment.ofArray(bytes), n);
    }
}
