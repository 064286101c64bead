package dev.enclave.runtime.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Transform codes: nearest levels, bit packing across heads, the inverse, and the checksummed file. */
class KvTransformCodeTest {

    /** A code with a random invertible transform (a scaled random rotation's product), bits 0 to 8 and uniform levels. */
    static KvTransformCode random(int d, SplittableRandom r) {
        return random(d, r, true);
    }

    /** As above; with {@code dropSome}, every ninth coefficient gets no bits. */
    static KvTransformCode random(int d, SplittableRandom r, boolean dropSome) {
        float[] t = new float[d * d], inv = new float[d * d];
        // T = diag(s) H D (Hadamard-free: a random orthogonal matrix from Gram-Schmidt), T^-1 = D H^T diag(1/s)
        double[][] q = new double[d][d];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++) q[i][j] = r.nextGaussian();
            for (int k = 0; k < i; k++) {
                double dot = 0;
                for (int j = 0; j < d; j++) dot += q[i][j] * q[k][j];
                for (int j = 0; j < d; j++) q[i][j] -= dot * q[k][j];
            }
            double n = 0;
            for (int j = 0; j < d; j++) n += q[i][j] * q[i][j];
            n = Math.sqrt(n);
            for (int j = 0; j < d; j++) q[i][j] /= n;
        }
        double[] s = new double[d];
        for (int i = 0; i < d; i++) s[i] = 0.5 + r.nextDouble();
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++) {
                t[i * d + j] = (float) (s[i] * q[i][j]);
                inv[j * d + i] = (float) (q[i][j] / s[i]);
            }
        }
        byte[] bits = new byte[d];
        float[][] levels = new float[d][];
        for (int i = 0; i < d; i++) {
            bits[i] = (byte) (dropSome && i % 9 == 4 ? 0 : 1 + r.nextInt(8));
            if (bits[i] == 0) continue;
            int n = 1 << bits[i];
            levels[i] = new float[n];
            for (int j = 0; j < n; j++) levels[i][j] = -3f + 6f * (j + 0.5f) / n;
        }
        return new KvTransformCode(d, t, inv, bits, levels);
    }

    @Test
    void encodesTheNearestLevelOfEachCoefficientAndPacksHeadsTightly() {
        SplittableRandom r = new SplittableRandom(3);
        int d = 24;
        KvTransformCode a = random(d, r), b = random(d, r);
        KvRows rows = KvRows.coded(new KvTransformCode[] {a, b}, 4, 2 * d, d);
        float[] x = new float[2 * d];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        rows.write(1, x, 0);
        float[] noise = new float[2 * d];
        for (int i = 0; i < noise.length; i++) noise[i] = (float) r.nextGaussian() * 3;
        rows.write(0, noise, 0);
        rows.write(2, noise, 0); // neighbours must not disturb row 1's bits
        float[] got = new float[2 * d], c = new float[d];
        rows.decode(1, 0, 2 * d, got, 0);
        for (int h = 0; h < 2; h++) {
            KvTransformCode code = h == 0 ? a : b;
            code.transform(x, h * d, c, 0);
            for (int i = 0; i < d; i++) {
                float[] l = code.levels(i);
                if (l == null) {
                    assertEquals(0f, got[h * d + i], "a coefficient without bits is dropped");
                    continue;
                }
                float best = l[0];
                for (float v : l) if (Math.abs(v - c[i]) < Math.abs(best - c[i])) best = v;
                assertEquals(best, got[h * d + i], 1e-6f, "head " + h + " coefficient " + i);
            }
        }
        int bits = a.rowBits() + b.rowBits();
        assertEquals(4L * ((bits + 7) / 8), rows.bytes(), "one row is both heads' codes, rounded up to a byte once");
        assertThrows(IllegalArgumentException.class, () -> rows.decode(1, 3, d, got, 0), "whole heads only");
    }

    @Test
    void theInverseUndoesTheTransform() {
        SplittableRandom r = new SplittableRandom(5);
        for (int d : new int[] {8, 16, 64, 80, 12}) {
            KvTransformCode code = random(d, r, false);
            float[] x = new float[d], c = new float[d], back = new float[d];
            for (int i = 0; i < d; i++) x[i] = (float) r.nextGaussian();
            code.transform(x, 0, c, 0);
            code.inverse(c, 0, back, 0);
            for (int i = 0; i < d; i++) assertEquals(x[i], back[i], 1e-4, "d " + d + " value " + i);
            // with dropped coefficients the inverse is of the kept ones: x's part along them
            KvTransformCode dropping = random(d, r, true);
            dropping.transform(x, 0, c, 0);
            float[] kept = c.clone();
            for (int i = 0; i < d; i++) if (dropping.levels(i) == null) kept[i] = 0;
            dropping.inverse(c, 0, back, 0);
            float[] want = new float[d];
            float[] inv = dropping.inverseRowMajor();
            for (int a = 0; a < d; a++) for (int b = 0; b < d; b++) want[a] += inv[a * d + b] * kept[b];
            for (int i = 0; i < d; i++) assertEquals(want[i], back[i], 1e-4, "d " + d + " dropped, value " + i);
        }
    }

    @Test
    void refusesCodesThatCannotBeRead() {
        float[] eye = new float[4];
        eye[0] = eye[3] = 1;
        assertThrows(IllegalArgumentException.class, () -> new KvTransformCode(2, eye, eye, new byte[] {9, 0}, new float[2][]));
        assertThrows(IllegalArgumentException.class, () -> new KvTransformCode(2, eye, eye, new byte[] {1, 0}, new float[][] {{1f, 0f}, null}),
                "levels must increase (the encoder searches them)");
        assertThrows(IllegalArgumentException.class, () -> new KvTransformCode(2, eye, eye, new byte[] {2, 0}, new float[][] {{0f, 1f}, null}),
                "2 bits need 4 levels");
    }

    @Test
    void theFileRoundTripsAndRefusesDamage(@TempDir Path dir) throws Exception {
        SplittableRandom r = new SplittableRandom(9);
        int d = 16;
        KvTransformCode[][] k = {{random(d, r), random(d, r)}, {random(d, r), random(d, r)}};
        KvTransformCode[][] v = {{random(d, r), random(d, r)}, {random(d, r), random(d, r)}};
        float[][] freq = {{1f, 0.1f, 0.01f}, {1f, 0.1f, 0.01f}};
        KvCode code = new KvCode(d, k, v, freq, false, "test");
        Path file = dir.resolve("m.kvc");
        code.write(file);
        KvCode back = KvCode.read(file);
        assertEquals(file.toString(), back.label(), "named by its path as given");
        assertEquals(code.bitsPerValue(), back.bitsPerValue(), 0.0);
        for (int l = 0; l < 2; l++) {
            for (int h = 0; h < 2; h++) {
                assertArrayEquals(code.layer(l).keys(h).forward(), back.layer(l).keys(h).forward());
                assertArrayEquals(code.layer(l).values(h).inverseRowMajor(), back.layer(l).values(h).inverseRowMajor());
                assertArrayEquals(code.layer(l).keys(h).bits(), back.layer(l).keys(h).bits());
            }
        }
        assertEquals("tc:" + file, KvPlan.parse("tc:" + file).toString(), "a plan names its code, so its text reads back");
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length / 2] ^= 1;
        Files.write(file, bytes);
        assertTrue(assertThrows(java.io.IOException.class, () -> KvCode.read(file)).getMessage().contains("damaged"));
        Files.write(file, java.util.Arrays.copyOf(bytes, 20));
        assertThrows(java.io.IOException.class, () -> KvCode.read(file));
        Files.writeString(file, "GGUF and then some more bytes than 32 of them, really");
        assertTrue(assertThrows(java.io.IOException.class, () -> KvCode.read(file)).getMessage().contains("not an Enclave KV code"));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> KvPlan.parse("tc:" + dir.resolve("none.kvc")));
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> KvPlan.parse("tc")).getMessage().contains("tc:FILE"));
    }

    /**
     * Fuzzing: bytes changed, inserted or cut in a valid file whose checksum is then made to match (what a hostile file
     * can do) are read or refused with an IOException, never another exception or a huge allocation.
     */
    @Test
    void hostileFilesAreReadOrRefusedInOneLine(@TempDir Path dir) throws Exception {
        SplittableRandom r = new SplittableRandom(21);
        int d = 8;
        KvCode code = new KvCode(d, new KvTransformCode[][] {{random(d, r)}, {random(d, r)}}, new KvTransformCode[][] {{random(d, r)}, {random(d, r)}},
                new float[][] {{1f, 0.1f}, {1f, 0.1f}}, true, "fuzz");
        Path file = dir.resolve("f.kvc");
        code.write(file);
        byte[] valid = Files.readAllBytes(file);
        int read = 0, refused = 0;
        for (int iter = 0; iter < 400; iter++) {
            byte[] body = java.util.Arrays.copyOf(valid, valid.length - 8);
            switch (iter % 4) {
                case 0, 1 -> { // a few bytes changed, the header's fields among them
                    int n = 1 + r.nextInt(4);
                    for (int i = 0; i < n; i++) {
                        int at = iter % 4 == 0 ? r.nextInt(Math.min(body.length, 32)) : r.nextInt(body.length);
                        body[at] = (byte) r.nextInt(256);
                    }
                }
                case 2 -> body = java.util.Arrays.copyOf(body, r.nextInt(body.length)); // cut
                default -> { // a run of 0xFF (huge counts, NaN floats)
                    int at = r.nextInt(body.length), n = Math.min(body.length - at, 1 + r.nextInt(8));
                    java.util.Arrays.fill(body, at, at + n, (byte) 0xFF);
                }
            }
            java.util.zip.CRC32 crc = new java.util.zip.CRC32();
            crc.update(body);
            byte[] hostile = java.nio.ByteBuffer.allocate(body.length + 8).put(body).putLong(crc.getValue()).array();
            Files.write(file, hostile);
            try {
                KvCode back = KvCode.read(file);
                assertTrue(back.bitsPerValue() > 0, "a file that reads is a usable code");
                read++;
            } catch (java.io.IOException e) {
                assertTrue(e.getMessage() != null && !e.getMessage().contains("\n"), "one line: " + e.getMessage());
                refused++;
            }
        }
        assertTrue(refused > 100 && read + refused == 400, read + " read, " + refused + " refused");
    }

    @Test
    void ropeTurnsForwardAndBack() {
        SplittableRandom r = new SplittableRandom(2);
        int d = 16;
        for (boolean neox : new boolean[] {false, true}) {
            KvCode code = new KvCode(d, new KvTransformCode[][] {{random(d, r)}}, new KvTransformCode[][] {{random(d, r)}},
                    new float[][] {{1f, 0.3f, 0.05f}}, neox, "t");
            float[] x = new float[d];
            for (int i = 0; i < d; i++) x[i] = (float) r.nextGaussian();
            float[] y = x.clone();
            code.layer(0).rope(y, 0, 300);
            assertTrue(Math.abs(y[0] - x[0]) > 1e-3 || Math.abs(y[1] - x[1]) > 1e-3, "turned");
            assertEquals(x[15], y[15], 0f, "values past the rotary pairs stay");
            code.layer(0).rope(y, 0, -300);
            for (int i = 0; i < d; i++) assertEquals(x[i], y[i], 1e-5, "neox " + neox + " value " + i);
        }
    }
}
