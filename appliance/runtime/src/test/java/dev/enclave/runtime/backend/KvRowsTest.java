package dev.enclave.runtime.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.quant.Quantizer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The KV cache's row formats: ggml's bytes, their decoders, the rotation, and the type names. */
class KvRowsTest {

    private static float[] gaussian(SplittableRandom r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * scale);
        return x;
    }

    /** With groups of 32, a Q8 or Q4 row holds exactly ggml's Q8_0 / Q4_0 blocks (quants and float16 scales). */
    @Test
    void quantizedRowsAreGgmlBlocks() {
        SplittableRandom r = new SplittableRandom(1);
        int kvDim = 128, headDim = 64;
        for (int trial = 0; trial < 50; trial++) {
            float[] x = gaussian(r, kvDim, 1 + trial);
            x[r.nextInt(kvDim)] = 0.5f * (1 + trial);  // ties for the rounding: x * id lands on .5 now and then
            var q8 = (KvRows.Q8) KvRows.of(KvFormat.Q8, 3, kvDim, headDim);
            q8.write(2, x, 0);
            byte[] ref = Quantizer.quantize(GGMLType.Q8_0, x, kvDim);
            for (int b = 0; b < kvDim / 32; b++) {
                assertEquals((short) ((ref[b * 34] & 0xFF) | (ref[b * 34 + 1] << 8)), q8.d[2 * (kvDim / 32) + b]);
                for (int j = 0; j < 32; j++) {
                    assertEquals(ref[b * 34 + 2 + j], q8.q[2 * kvDim + b * 32 + j], "q8 value " + (b * 32 + j));
                }
            }
            var q4 = (KvRows.Q4) KvRows.of(KvFormat.Q4, 3, kvDim, headDim);
            q4.write(1, x, 0);
            ref = Quantizer.quantize(GGMLType.Q4_0, x, kvDim);
            for (int b = 0; b < kvDim / 32; b++) {
                assertEquals((short) ((ref[b * 18] & 0xFF) | (ref[b * 18 + 1] << 8)), q4.d[kvDim / 32 + b]);
                for (int j = 0; j < 16; j++) assertEquals(ref[b * 18 + 2 + j], q4.q[kvDim / 2 + b * 16 + j]);
            }
        }
    }

    /** Ties round half away from zero, as C's roundf in ggml's quantize_row_q8_0 (Java's Math.round goes up). */
    @Test
    void q8TiesRoundAwayFromZero() {
        float[] x = new float[32];
        x[0] = 127f; // d = 1
        x[1] = -2.5f;
        x[2] = 2.5f;
        byte[] block = Quantizer.quantize(GGMLType.Q8_0, x, 32);
        assertEquals(-3, block[2 + 1]);
        assertEquals(3, block[2 + 2]);
        var rows = (KvRows.Q8) KvRows.of(KvFormat.Q8, 1, 32, 32);
        rows.write(0, x, 0);
        assertEquals(-3, rows.q[1]);
    }

    /** Decoding (vectorized where the lanes fit a group) gives the scalar definition's values, for every format and head size. */
    @Test
    void decodersMatchTheirDefinition() {
        SplittableRandom r = new SplittableRandom(2);
        for (int headDim : new int[] {8, 16, 48, 64, 80, 128}) {
            int kvDim = 2 * headDim;
            for (KvFormat f : new KvFormat[] {KvFormat.F32, KvFormat.F16, KvFormat.Q8, KvFormat.Q4}) { // Q3, Q2: below
                KvRows rows = KvRows.of(f, 5, kvDim, headDim);
                float[] x = gaussian(r, kvDim, 3);
                rows.write(4, x, 0);
                float[] got = new float[kvDim + 4];
                rows.decode(4, headDim, headDim, got, 4);
                int group = KvFormat.group(headDim);
                for (int i = 0; i < headDim; i++) {
                    float want = switch (f) {
                        case F32 -> x[headDim + i];
                        case F16 -> Float.float16ToFloat(Float.floatToFloat16(x[headDim + i]));
                        case Q8 -> {
                            var q = (KvRows.Q8) rows;
                            yield q.q[4 * kvDim + headDim + i] * Float.float16ToFloat(q.d[4 * (kvDim / group) + (headDim + i) / group]);
                        }
                        case Q4 -> {
                            var q = (KvRows.Q4) rows;
                            int g = (headDim + i) / group, j = (headDim + i) % group, half = group / 2;
                            int b = q.q[(4 * kvDim + g * group) / 2 + j % half] & 0xFF;
                            int nib = j < half ? b & 15 : b >>> 4;
                            yield (nib - 8) * Float.float16ToFloat(q.d[4 * (kvDim / group) + g]);
                        }
                        default -> throw new AssertionError(f);
                    };
                    assertEquals(want, got[4 + i], 0f, f + " head " + headDim + " value " + i);
                }
                // and the error is what the format promises: half a step of the group's scale
                double bound = switch (f) {
                    case F32 -> 0;
                    case F16 -> 3 * 9.8e-4 * 4;
                    case Q8 -> 12.0 / 127 * 0.51 + 0.01;
                    case Q4 -> 12.0 / 8 * 0.51 + 0.02;
                    default -> throw new AssertionError(f);
                };
                for (int i = 0; i < headDim; i++) {
                    assertTrue(Math.abs(got[4 + i] - x[headDim + i]) <= bound, f + " error " + Math.abs(got[4 + i] - x[headDim + i]));
                }
            }
        }
    }

    @Test
    void float16DecodingIsExactForEveryFiniteHalf() {
        KvRows rows = KvRows.of(KvFormat.F16, 1, 1024, 64);
        short[] data = ((KvRows.F16) rows).data;
        float[] got = new float[1024];
        for (int base = 0; base < 65536; base += 1024) {
            for (int i = 0; i < 1024; i++) data[i] = (short) (base + i);
            rows.decode(0, 0, 1024, got, 0);
            for (int i = 0; i < 1024; i++) {
                short h = (short) (base + i);
                if ((h & 0x7c00) == 0x7c00) continue; // inf and NaN never come out of a finite cache
                assertEquals(Float.floatToRawIntBits(Float.float16ToFloat(h)), Float.floatToRawIntBits(got[i]), "half " + Integer.toHexString(h & 0xffff));
            }
        }
    }

    @Test
    void rotationIsOrthogonalAndSpreadsAnOutlier() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : new int[] {8, 16, 64, 128}) {
            HadamardRotation rot = new HadamardRotation(n);
            float[] a = gaussian(r, n, 1), b = gaussian(r, n, 1);
            float[] ra = a.clone(), rb = b.clone();
            rot.rotate(ra, 0);
            rot.rotate(rb, 0);
            assertEquals(dot(a, b), dot(ra, rb), 1e-4 * n, "dot products survive");
            rot.unrotate(ra, 0);
            for (int i = 0; i < n; i++) assertEquals(a[i], ra[i], 1e-5);
        }
        // one channel 50x the others: 4-bit without rotation loses the small ones, with it the error drops
        int headDim = 64;
        double plain = 0, rotated = 0;
        for (int trial = 0; trial < 20; trial++) {
            float[] x = gaussian(r, headDim, 1);
            x[7] = 50;
            plain += roundTripError(KvType.parse("q4"), x, headDim);
            rotated += roundTripError(KvType.parse("q4r"), x, headDim);
        }
        assertTrue(rotated < plain * 0.7, "rotated " + rotated + " vs plain " + plain);
    }

    private static double roundTripError(KvType type, float[] x, int headDim) {
        HostKvStorage s = new HostKvStorage(headDim, headDim, 1, type);
        s.write(0, x, 0, x, 0);
        float[] k = new float[headDim], v = new float[headDim];
        s.readSlot(0, k, v);
        double e = 0;
        for (int i = 0; i < headDim; i++) e += (k[i] - x[i]) * (k[i] - x[i]);
        return e;
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    @Test
    void typesParseAndCountTheirBytes() {
        assertEquals(KvType.F32, KvType.parse("F32"));
        KvType t = KvType.parse("q8/q4r");
        assertEquals(KvFormat.Q8, t.keys());
        assertEquals(KvFormat.Q4, t.values());
        assertTrue(!t.rotateKeys() && t.rotateValues());
        assertEquals("q8/q4r", t.toString());
        assertEquals("q4r", KvType.parse("q4r/q4r").toString());
        // 1B shape: 8 KV heads of 64 per layer; ggml's sizes: q8_0 34 bytes per 32, q4_0 18 per 32, f16 2 per value
        assertEquals(2 * 512 * 4, KvType.F32.bytesPerPosition(512, 64));
        assertEquals(2 * 512 / 32 * 34, KvType.parse("q8").bytesPerPosition(512, 64));
        assertEquals(2 * 512 / 32 * 18, KvType.parse("q4").bytesPerPosition(512, 64));
        assertEquals(512 * 2 + 512 / 32 * 18, KvType.parse("f16/q4").bytesPerPosition(512, 64));
        assertEquals(4.5, KvType.parse("q4r").bitsPerValue(64), 1e-9);
        for (String bad : new String[] {"", "q5", "f16r", "q8/q4/q4", "r"}) {
            assertThrows(IllegalArgumentException.class, () -> KvType.parse(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> KvType.parse("q4r").check(80));
        KvType.parse("q4").check(80);
        var rows = KvRows.of(KvFormat.Q4, 10, 160, 80); // groups of 16 in heads of 80
        assertEquals(10 * 80 + 10 * 10 * 2, rows.bytes());
        assertArrayEquals(new float[0], new float[0]);
    }

    /** Copy-on-write copies a block's encoded rows (quants, scales) unchanged, in every type. */
    @Test
    void copiedSlotsReadBackTheSame() {
        SplittableRandom r = new SplittableRandom(5);
        for (String type : new String[] {"f32", "f16", "q8", "q4r", "q8r/q4", "q3jr/q4j"}) {
            HostKvStorage s = new HostKvStorage(128, 64, 8, KvType.parse(type));
            for (int slot = 0; slot < 4; slot++) s.write(slot, gaussian(r, 128, 2), 0, gaussian(r, 128, 2), 0);
            s.copySlots(0, 4, 4);
            float[] k1 = new float[128], v1 = new float[128], k2 = new float[128], v2 = new float[128];
            for (int slot = 0; slot < 4; slot++) {
                s.readSlot(slot, k1, v1);
                s.readSlot(slot + 4, k2, v2);
                assertArrayEquals(k1, k2, type + " keys of slot " + slot);
                assertArrayEquals(v1, v2, type + " values of slot " + slot);
            }
            assertEquals(KvType.parse(type).bytesPerPosition(128, 64) * 8, s.bytes(), type + " bytes");
        }
    }

    /** 3- and 2-bit codes: the nearest Lloyd-Max level of each value over its group's RMS, packed bits, bounded error. */
    @Test
    void codebookRowsHoldTheNearestLevel() {
        SplittableRandom r = new SplittableRandom(6);
        for (KvFormat f : new KvFormat[] {KvFormat.Q3, KvFormat.Q2}) {
            float[] levels = f == KvFormat.Q3 ? KvRows.Codebook.GAUSS3 : KvRows.Codebook.GAUSS2;
            for (int headDim : new int[] {8, 16, 64}) {
                int kvDim = 2 * headDim, group = KvFormat.group(headDim);
                KvRows rows = KvRows.of(f, 3, kvDim, headDim);
                float[] x = gaussian(r, kvDim, 1.7);
                rows.write(1, x, 0);
                rows.write(2, gaussian(r, kvDim, 5), 0); // a neighbour row must not disturb row 1's bits
                float[] got = new float[kvDim];
                rows.decode(1, 0, kvDim, got, 0);
                double se = 0, ss = 0;
                for (int g = 0; g < kvDim / group; g++) {
                    double rms = 0;
                    for (int j = 0; j < group; j++) rms += x[g * group + j] * x[g * group + j];
                    float s = Float.float16ToFloat(Float.floatToFloat16((float) Math.sqrt(rms / group)));
                    for (int j = 0; j < group; j++) {
                        float v = x[g * group + j] / s;
                        float best = levels[0];
                        for (float l : levels) if (Math.abs(l - v) < Math.abs(best - v)) best = l;
                        assertEquals(best * s, got[g * group + j], 1e-6f * s, f + " head " + headDim + " value " + (g * group + j));
                        se += (got[g * group + j] - x[g * group + j]) * (got[g * group + j] - x[g * group + j]);
                        ss += x[g * group + j] * x[g * group + j];
                    }
                }
                // Lloyd-Max on a Gaussian: 3 bits keep ~3.5% of the energy as error, 2 bits ~12%
                assertTrue(se / ss < (f == KvFormat.Q3 ? 0.08 : 0.2), f + " relative error " + se / ss);
                assertEquals(3L * kvDim * f.bits / 8 + 3L * (kvDim / group) * 2, rows.bytes());
            }
        }
        assertEquals(3.5, KvFormat.Q3.bitsPerValue(64), 1e-9);
        assertEquals(2.5, KvFormat.Q2.bitsPerValue(64), 1e-9);
    }

    /**
     * The QJL sketch: a sketched row's dot product with a query is an unbiased estimate of the original's, where the
     * Lloyd-Max codes alone shrink it (their decoded row is the centroid of its cell: slope 1 - distortion, ~0.88 at
     * 2 bits); and it is closer on average than the codes alone. Rows and queries as a rotated head's: Gaussian.
     */
    @Test
    void theSketchMakesInnerProductsUnbiased() {
        SplittableRandom r = new SplittableRandom(12);
        for (int headDim : new int[] {16, 64, 128}) {
            int n = 4000;
            double sxx = 0, sxCodes = 0, srr = 0, srSketch = 0, seCodes = 0, seSketch = 0;
            KvRows codes = KvRows.of(KvFormat.Q2, 1, headDim, headDim), sketched = KvRows.of(KvFormat.Q3J, 1, headDim, headDim);
            float[] a = new float[headDim], b = new float[headDim];
            for (int t = 0; t < n; t++) {
                float[] x = gaussian(r, headDim, 0.5 + r.nextDouble() * 3), y = gaussian(r, headDim, 1);
                codes.write(0, x, 0);
                sketched.write(0, x, 0);
                codes.decode(0, 0, headDim, a, 0);
                sketched.decode(0, 0, headDim, b, 0);
                double exact = 0, viaCodes = 0, viaSketch = 0;
                for (int i = 0; i < headDim; i++) {
                    exact += (double) x[i] * y[i];
                    viaCodes += (double) a[i] * y[i];
                    viaSketch += (double) b[i] * y[i];
                }
                sxx += exact * exact;
                sxCodes += exact * viaCodes;
                // the sketch's part alone against what the codes missed: QJL's estimate of the residual's dot product
                srr += (exact - viaCodes) * (exact - viaCodes);
                srSketch += (exact - viaCodes) * (viaSketch - viaCodes);
                seCodes += (viaCodes - exact) * (viaCodes - exact);
                seSketch += (viaSketch - exact) * (viaSketch - exact);
            }
            double slopeCodes = sxCodes / sxx, slopeSketch = srSketch / srr;
            assertTrue(slopeCodes < 0.93, "head " + headDim + ": the codes alone shrink dot products, slope " + slopeCodes);
            assertEquals(1.0, slopeSketch, 0.06, "head " + headDim + ": the sketch estimates the residual's dot product unbiased, slope " + slopeSketch);
            assertTrue(seSketch < 0.8 * seCodes, "head " + headDim + ": sketched error " + seSketch / n + " vs codes " + seCodes / n);
        }
        assertEquals(3.75, KvFormat.Q3J.bitsPerValue(64), 1e-9);
        assertEquals(4.75, KvFormat.Q4J.bitsPerValue(64), 1e-9);
        assertEquals(128 / 4 + 128 / 32 * 2 + 128 / 8 + 2 * 2, KvFormat.Q3J.bytesPerRow(128, 64));
        assertEquals(KvFormat.Q3J, KvType.parse("q3jr").keys());
        assertTrue(KvType.parse("q3jr/q3r").rotateKeys());
        assertThrows(IllegalArgumentException.class, () -> KvType.parse("q3j").check(80));
        assertThrows(IllegalArgumentException.class, () -> KvRows.of(KvFormat.Q3J, 1, 128, 64).decode(0, 8, 64, new float[64], 0));
    }

    /** Per-head formats: each head's slice of a row reads back as that head's format alone would store it. */
    @Test
    void perHeadRowsDecodeEachHeadInItsFormat() {
        int headDim = 64, kvDim = 3 * headDim, positions = 5;
        KvType t = KvType.parse("q8r|q4r|q2r/f16|q8|q8");
        java.util.List<KvFormat> kh = java.util.List.of(KvFormat.Q8, KvFormat.Q4, KvFormat.Q2);
        KvRows rows = KvRows.perHead(kh, positions, kvDim, headDim);
        KvRows[] alone = {KvRows.of(KvFormat.Q8, positions, headDim, headDim), KvRows.of(KvFormat.Q4, positions, headDim, headDim),
                KvRows.of(KvFormat.Q2, positions, headDim, headDim)};
        SplittableRandom r = new SplittableRandom(9);
        float[] x = new float[kvDim];
        for (int slot = 0; slot < positions; slot++) {
            for (int i = 0; i < kvDim; i++) x[i] = (float) r.nextGaussian();
            rows.write(slot, x, 0);
            for (int h = 0; h < 3; h++) alone[h].write(slot, x, h * headDim);
        }
        rows.copy(1, 4, 1);
        for (int h = 0; h < 3; h++) alone[h].copy(1, 4, 1);
        float[] whole = new float[kvDim], part = new float[headDim], want = new float[headDim];
        for (int slot = 0; slot < positions; slot++) {
            rows.decode(slot, 0, kvDim, whole, 0);
            for (int h = 0; h < 3; h++) {
                alone[h].decode(slot, 0, headDim, want, 0);
                rows.decode(slot, h * headDim, headDim, part, 0);
                assertArrayEquals(want, part, "slot " + slot + " head " + h);
                assertArrayEquals(want, java.util.Arrays.copyOfRange(whole, h * headDim, (h + 1) * headDim));
            }
        }
        assertEquals(alone[0].bytes() + alone[1].bytes() + alone[2].bytes(), rows.bytes());
        // the type: per-head bytes and bits, its text form, and a head count the model lacks refused
        assertEquals(t, KvType.parse(t.toString()));
        assertEquals(KvFormat.Q2, t.keyFormat(2));
        assertEquals((KvFormat.Q8.bitsPerValue(64) + KvFormat.Q4.bitsPerValue(64) + KvFormat.Q2.bitsPerValue(64)) / 3
                + (KvFormat.F16.bitsPerValue(64) + 2 * KvFormat.Q8.bitsPerValue(64)) / 3, 2 * t.bitsPerValue(64), 1e-9);
        assertThrows(IllegalArgumentException.class, () -> t.checkHeads(2));
        assertThrows(IllegalArgumentException.class, () -> KvType.parse("q4r|q4"), "a tensor's heads share one rotation");
    }
}
