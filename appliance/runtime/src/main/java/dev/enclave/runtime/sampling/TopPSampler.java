package dev.enclave.runtime.sampling;

import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;

/**
 * Temperature sampling restricted to the smallest set of tokens whose probability adds up to {@code topP}.
 * The generator is seeded, so a seed and a prompt give the same answer every time. Buffers are allocated once
 * per sampler (one per request), not per token.
 */
public final class TopPSampler implements Sampler {

    private final float temperature;
    private final float topP;
    private final RandomGenerator random;
    private int[] order = new int[0];
    private float[] probs = new float[0];

    public TopPSampler(float temperature, float topP, long seed) {
        if (!(temperature > 0f)) {
            throw new IllegalArgumentException("temperature must be positive");
        }
        if (!(topP > 0f && topP <= 1f)) {
            throw new IllegalArgumentException("top_p must be in (0, 1]");
        }
        this.temperature = temperature;
        this.topP = topP;
        this.random = RandomGeneratorFactory.of("L64X128MixRandom").create(seed);
    }

    @Override
    public int sample(float[] logits) {
        int n = logits.length;
        if (probs.length != n) {
            probs = new float[n];
            order = new int[n];
        }
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float p = (float) Math.exp((logits[i] - max) / temperature);
            probs[i] = p;
            sum += p;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) probs[i] *= inv;

        float r = random.nextFloat();
        if (topP >= 1f) {
            return pick(r, n, null, 1f);
        }
        // Only tokens that could be in the nucleus matter: anything below (1 - topP) / (n - 1) cannot be.
        float cutoff = (1f - topP) / Math.max(1, n - 1);
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (probs[i] >= cutoff) order[m++] = i;
        }
        sortByProbabilityDescending(m);
        float cumulative = 0f;
        int last = m - 1;
        for (int i = 0; i < m; i++) {
            cumulative += probs[order[i]];
            if (cumulative > topP) {
                last = i;
                break;
            }
        }
        return pick(r, last + 1, order, cumulative);
    }

    private int pick(float r, int count, int[] ids, float total) {
        float target = r * total;
        float c = 0f;
        for (int i = 0; i < count; i++) {
            int id = ids == null ? i : ids[i];
            c += probs[id];
            if (target < c) return id;
        }
        return ids == null ? count - 1 : ids[count - 1];
    }

    /** Insertion-friendly heap sort on the candidate ids, no boxing. */
    private void sortByProbabilityDescending(int m) {
        for (int i = m / 2 - 1; i >= 0; i--) siftDown(i, m);
        for (int end = m - 1; end > 0; end--) {
            int t = order[0];
            order[0] = order[end];
            order[end] = t;
            siftDown(0, end);
        }
    }

    // min-heap on probability, so the heap sort leaves the array in descending order
    private void siftDown(int i, int m) {
        while (true) {
            int l = 2 * i + 1;
            if (l >= m) return;
            int r = l + 1;
            int s = r < m && probs[order[r]] < probs[order[l]] ? r : l;
            if (probs[order[s]] >= probs[order[i]]) return;
            int t = order[i];
            order[i] = order[s];
            order[s] = t;
            i = s;
        }
    }
}
