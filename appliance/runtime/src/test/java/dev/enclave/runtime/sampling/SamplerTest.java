package dev.enclave.runtime.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {

    static SamplingParams params(float temp, int topK, float topP, float minP, float typical) {
        return new SamplingParams(temp, topK, topP, minP, typical, 1f, 64, 0f, 0f, Map.of(), 1);
    }

    @Test
    void greedyTakesTheLowestIdOnTies() {
        assertEquals(1, new GreedySampler().sample(new float[] {0f, 3f, 3f, -1f}));
        assertEquals(0, Sampler.of(0f, 1f, 1).sample(new float[] {5f, 3f}));
    }

    @Test
    void sameSeedSameSequenceDifferentSeedDifferentSequence() {
        float[] logits = randomLogits(500, 7);
        int[] a = draw(Sampler.of(1f, 0.95f, 42), logits, 64);
        int[] b = draw(Sampler.of(1f, 0.95f, 42), logits, 64);
        int[] c = draw(Sampler.of(1f, 0.95f, 43), logits, 64);
        assertEquals(Arrays.toString(a), Arrays.toString(b));
        assertNotEquals(Arrays.toString(a), Arrays.toString(c));
    }

    /** probabilities 0.5, 0.3, 0.15, 0.05 */
    static final float[] FOUR = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};

    @Test
    void topPKeepsOnlyTheNucleus() {
        int[] counts = histogram(Sampler.of(params(1f, 0, 0.7f, 0f, 1f)), FOUR, 20000);
        assertEquals(0, counts[2] + counts[3], "tokens outside the 0.7 nucleus were drawn");
        double ratio = counts[0] / (double) counts[1];
        assertTrue(ratio > 1.5 && ratio < 1.85, "ratio " + ratio);
    }

    @Test
    void topKMinPAndTypical() {
        int[] k = histogram(Sampler.of(params(1f, 2, 1f, 0f, 1f)), FOUR, 5000);
        assertEquals(0, k[2] + k[3]);
        assertTrue(k[0] > 0 && k[1] > 0);
        // min-p 0.5: keep p >= 0.25 → tokens 0 and 1
        int[] minp = histogram(Sampler.of(params(1f, 0, 1f, 0.5f, 1f)), FOUR, 5000);
        assertEquals(0, minp[2] + minp[3]);
        assertTrue(minp[1] > 0);
        // typical: the most typical token (surprise closest to the entropy) is always kept
        int[] typ = histogram(Sampler.of(params(1f, 0, 1f, 0f, 0.2f)), FOUR, 2000);
        assertEquals(1, Arrays.stream(typ).filter(c -> c > 0).count(), Arrays.toString(typ));
    }

    @Test
    void temperatureSharpensAndFlattens() {
        float[] logits = {2f, 1f, 0f};
        int hot = histogram(Sampler.of(5f, 1f, 3), logits, 20000)[0];
        int cold = histogram(Sampler.of(0.2f, 1f, 3), logits, 20000)[0];
        assertTrue(cold > 19500, "cold " + cold);
        assertTrue(hot < 9000, "hot " + hot);
    }

    @Test
    void logitBiasBansAndForces() {
        float[] logits = {5f, 1f, 0f};
        Sampler ban = Sampler.of(new SamplingParams(0f, 0, 1f, 0f, 1f, 1f, 64, 0f, 0f, Map.of(0, -100f), 1));
        assertEquals(1, ban.sample(logits.clone()));
        Sampler force = Sampler.of(new SamplingParams(1f, 0, 1f, 0f, 1f, 1f, 64, 0f, 0f, Map.of(2, 100f), 1));
        for (int i = 0; i < 100; i++) assertEquals(2, force.sample(logits.clone()));
    }

    @Test
    void penaltiesDiscourageRepeats() {
        float[] logits = {3f, 2.9f, -1f};
        Sampler rep = Sampler.of(new SamplingParams(0f, 0, 1f, 0f, 1f, 1.5f, 64, 0f, 0f, Map.of(), 1));
        rep.accept(0);
        float[] l = logits.clone();
        assertEquals(1, rep.sample(l));
        assertEquals(2f, l[0], 1e-6); // 3 / 1.5
        Sampler freq = Sampler.of(new SamplingParams(0f, 0, 1f, 0f, 1f, 1f, 64, 0.5f, 0.25f, Map.of(), 1));
        freq.accept(0);
        freq.accept(0);
        l = logits.clone();
        freq.sample(l);
        assertEquals(3f - 2 * 0.5f - 0.25f, l[0], 1e-6);
        // the window forgets old tokens
        Sampler windowed = Sampler.of(new SamplingParams(0f, 0, 1f, 0f, 1f, 2f, 2, 0f, 0f, Map.of(), 1));
        windowed.accept(0);
        windowed.accept(1);
        windowed.accept(1);
        l = logits.clone();
        windowed.sample(l);
        assertEquals(3f, l[0], 1e-6);
        assertEquals(2.9f / 2, l[1], 1e-6);
    }

    @Test
    void rejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> Sampler.of(1f, 0f, 1));
        assertThrows(IllegalArgumentException.class, () -> Sampler.of(1f, 1.5f, 1));
        assertThrows(IllegalArgumentException.class, () -> Sampler.of(Float.NaN, 0.5f, 1));
        assertThrows(IllegalArgumentException.class, () -> params(1f, -1, 1f, 0f, 1f));
    }

    private static int[] histogram(Sampler s, float[] logits, int n) {
        int[] counts = new int[logits.length];
        for (int i = 0; i < n; i++) counts[s.sample(logits.clone())]++;
        return counts;
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

    /** The bisected nucleus floor keeps exactly the sorted-prefix nucleus, on flat and on peaked distributions. */
    @Test
    void nucleusFloorMatchesTheSortedDefinition() {
        java.util.Random r = new java.util.Random(9);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + r.nextInt(trial < 100 ? 50 : 5000);
            double spread = trial % 3 == 0 ? 0.01 : trial % 3 == 1 ? 1 : 8; // nearly flat .. very peaked
            float[] probs = new float[n];
            double sum = 0;
            for (int i = 0; i < n; i++) sum += probs[i] = (float) Math.exp(r.nextGaussian() * spread);
            for (int i = 0; i < n; i++) probs[i] = (float) (probs[i] / sum);
            float topP = 0.05f + 0.9f * r.nextFloat();
            float[] sorted = probs.clone();
            java.util.Arrays.sort(sorted);
            float cumulative = 0;
            float want = sorted[0];
            for (int i = n - 1; i >= 0; i--) {
                cumulative += sorted[i];
                if (cumulative >= topP) {
                    want = sorted[i];
                    break;
                }
            }
            float got = ChainSampler.nucleusFloor(probs, n, topP);
            // the two sums run in different orders; they may disagree only on a token whose inclusion is a rounding tie
            if (got != want) {
                double massGot = 0, massAbove = 0;
                for (float q : probs) {
                    if (q >= got) massGot += q;
                    if (q > got) massAbove += q;
                }
                assertTrue(massGot >= topP - 1e-5 && massAbove < topP + 1e-5, "trial " + trial + ": floor " + got + " vs " + want);
            }
        }
    }
}
