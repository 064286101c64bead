package dev.enclave.runtime.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {

    @Test
    void greedyTakesTheLowestIdOnTies() {
        assertEquals(1, new GreedySampler().sample(new float[] {0f, 3f, 3f, -1f}));
        assertEquals(0, Sampler.of(0f, 1f, 1).sample(new float[] {5f, 3f}));
    }

    @Test
    void sameSeedSameSequenceDifferentSeedDifferentSequence() {
        float[] logits = randomLogits(500, 7);
        int[] a = draw(new TopPSampler(1f, 0.95f, 42), logits, 64);
        int[] b = draw(new TopPSampler(1f, 0.95f, 42), logits, 64);
        int[] c = draw(new TopPSampler(1f, 0.95f, 43), logits, 64);
        assertEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(b));
        assertNotEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(c));
    }

    @Test
    void topPKeepsOnlyTheNucleus() {
        // probabilities ~ 0.5, 0.3, 0.15, 0.05 at temperature 1
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
        TopPSampler s = new TopPSampler(1f, 0.7f, 1);
        int[] counts = new int[4];
        for (int i = 0; i < 20000; i++) counts[s.sample(logits.clone())]++;
        assertEquals(0, counts[2] + counts[3], "tokens outside the 0.7 nucleus were drawn");
        // within the nucleus {0, 1} the ratio follows 0.5 : 0.3
        double ratio = counts[0] / (double) counts[1];
        assertTrue(ratio > 1.5 && ratio < 1.85, "ratio " + ratio);
    }

    @Test
    void temperatureSharpensAndFlattens() {
        float[] logits = {2f, 1f, 0f};
        int hot = countOf(new TopPSampler(5f, 1f, 3), logits, 0, 20000);
        int cold = countOf(new TopPSampler(0.2f, 1f, 3), logits, 0, 20000);
        assertTrue(cold > 19500, "cold " + cold);
        assertTrue(hot < 9000, "hot " + hot);
    }

    @Test
    void rejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> new TopPSampler(1f, 0f, 1));
        assertThrows(IllegalArgumentException.class, () -> new TopPSampler(1f, 1.5f, 1));
        assertThrows(IllegalArgumentException.class, () -> new TopPSampler(Float.NaN, 0.5f, 1));
    }

    private static int countOf(Sampler s, float[] logits, int id, int n) {
        int c = 0;
        for (int i = 0; i < n; i++) if (s.sample(logits.clone()) == id) c++;
        return c;
    }

    private static int[] draw(Sampler s, float[] logits, int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = s.sample(logits.clone());
        return r;
    }

    private static float[] randomLogits(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) l[i] = (float) r.nextGaussian() * 3;
        return l;
    }
}
