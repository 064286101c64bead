package dev.enclave.runtime.sampling;

import dev.enclave.runtime.tensor.VectorMath;
import java.util.Map;
import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;

/**
 * The sampler chain of {@link SamplingParams}. Candidate buffers are allocated once per sampler (one per
 * request) and reused for every token; the penalty window is a ring buffer with per-token counts.
 */
public final class ChainSampler implements Sampler {

    private final SamplingParams p;
    private final RandomGenerator random;
    private int[] ids = new int[0];
    private float[] probs = new float[0];
    private float[] scratch = new float[0];
    // penalty window
    private int[] window;
    private int windowStart;
    private int windowSize;
    private int[] counts = new int[0];
    private int[] stamps = new int[0];
    private int stamp;

    public ChainSampler(SamplingParams params) {
        this.p = params;
        this.random = RandomGeneratorFactory.of("L64X128MixRandom").create(params.seed());
        int n = params.penaltyLastN() < 0 ? 1 << 16 : params.penaltyLastN();
        this.window = new int[Math.max(1, n)];
    }

    @Override
    public void accept(int token) {
        if (!p.hasPenalties() || p.penaltyLastN() == 0 || token < 0) return;
        if (token >= counts.length) counts = java.util.Arrays.copyOf(counts, Math.max(token + 1, counts.length * 2));
        if (p.penaltyLastN() < 0 && windowSize == window.length) {
            window = java.util.Arrays.copyOf(window, window.length * 2); // unbounded window: grow
        }
        if (windowSize == window.length) {
            int old = window[windowStart];
            counts[old]--;
            window[windowStart] = token;
            windowStart = (windowStart + 1) % window.length;
        } else {
            window[(windowStart + windowSize) % window.length] = token;
            windowSize++;
        }
        counts[token]++;
    }

    @Override
    public int sample(float[] logits) {
        int n = logits.length;
        for (Map.Entry<Integer, Float> e : p.logitBias().entrySet()) {
            int id = e.getKey();
            if (id >= 0 && id < n) logits[id] += e.getValue();
        }
        if (p.hasPenalties()) applyPenalties(logits);
        if (p.greedy()) return argmax(logits);
        ensure(n);

        // candidates: top-k first (cheap cut), else everything
        int m;
        if (p.topK() > 0 && p.topK() < n) {
            m = topK(logits, p.topK());
        } else {
            for (int i = 0; i < n; i++) ids[i] = i;
            m = n;
        }
        boolean needSorted = p.topP() < 1f || p.typicalP() < 1f || p.minP() > 0f;
        if (needSorted && m == n && p.topP() < 1f && p.typicalP() >= 1f && p.minP() <= 0f) {
            // nucleus alone over the whole vocabulary: find the nucleus's probability floor by bisection instead of
            // sorting the candidates — on a flat distribution (an untrained or very uncertain model) the nucleus is
            // most of a 128K vocabulary and the sort took ~20 ms per token. Same set; sampled in id order.
            softmaxOver(logits, m, 1f);
            float floor = nucleusFloor(probs, n, p.topP());
            int k = 0;
            for (int i = 0; i < n; i++) if (probs[i] >= floor) ids[k++] = i;
            m = k;
        } else if (needSorted) {
            softmaxOver(logits, m, 1f);
            if (p.topP() < 1f && m == n) {
                // nothing below (1 - topP) / (n - 1) can be in the nucleus: drop it before sorting
                float cut = (1f - p.topP()) / Math.max(1, n - 1);
                int k = 0;
                for (int i = 0; i < m; i++) if (probs[ids[i]] >= cut) ids[k++] = ids[i];
                m = k;
            }
            sortByProbability(m);
            if (p.typicalP() < 1f) m = typical(m);
            if (p.topP() < 1f) m = nucleus(m);
            if (p.minP() > 0f) {
                float floor = p.minP() * probs[ids[0]];
                int k = 1;
                while (k < m && probs[ids[k]] >= floor) k++;
                m = k;
            }
        }
        softmaxOver(logits, m, p.temperature());
        float r = random.nextFloat();
        float c = 0f;
        for (int i = 0; i < m; i++) {
            c += probs[ids[i]];
            if (r < c) return ids[i];
        }
        return ids[m - 1];
    }

    private void applyPenalties(float[] logits) {
        stamp++;
        if (stamps.length < counts.length) stamps = new int[counts.length];
        for (int k = 0; k < windowSize; k++) {
            int t = window[(windowStart + k) % window.length];
            if (t >= logits.length || stamps[t] == stamp) continue; // each distinct token once
            stamps[t] = stamp;
            float l = logits[t];
            if (p.repeatPenalty() != 1f) l = l > 0 ? l / p.repeatPenalty() : l * p.repeatPenalty();
            l -= counts[t] * p.frequencyPenalty() + p.presencePenalty();
            logits[t] = l;
        }
    }

    private void ensure(int n) {
        if (ids.length < n) {
            ids = new int[n];
            probs = new float[n];
            scratch = new float[n];
        }
    }

    /** Probabilities of the first {@code m} candidates at temperature {@code t}, written to probs[id]. */
    private void softmaxOver(float[] logits, int m, float t) {
        if (m == logits.length) {
            // every token is a candidate (in whatever order): one vectorized pass over the whole vocabulary
            float max = VectorMath.max(logits, 0, m);
            double sum = VectorMath.expShifted(logits, 0, probs, 0, m, max, 1f / t);
            VectorMath.scale(probs, 0, m, (float) (1.0 / sum));
            return;
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < m; i++) max = Math.max(max, logits[ids[i]]);
        double sum = 0;
        for (int i = 0; i < m; i++) {
            float e = (float) Math.exp((logits[ids[i]] - max) / t);
            probs[ids[i]] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < m; i++) probs[ids[i]] *= inv;
    }

    /** The k largest logits' ids into ids[0..k), via a min-heap on scratch (no boxing). */
    private int topK(float[] logits, int k) {
        for (int i = 0; i < k; i++) {
            ids[i] = i;
        }
        for (int i = k / 2 - 1; i >= 0; i--) siftDownMin(logits, i, k);
        for (int i = k; i < logits.length; i++) {
            if (logits[i] > logits[ids[0]]) {
                ids[0] = i;
                siftDownMin(logits, 0, k);
            }
        }
        return k;
    }

    /** Sift-down on ids[0..m) keyed by v[id]: a min-heap when sign is 1, a max-heap when sign is -1. */
    private void siftDown(float[] v, int i, int m, int sign) {
        while (true) {
            int l = 2 * i + 1;
            if (l >= m) return;
            int r = l + 1;
            int s = r < m && sign * v[ids[r]] < sign * v[ids[l]] ? r : l;
            if (sign * v[ids[s]] >= sign * v[ids[i]]) return;
            int t = ids[i];
            ids[i] = ids[s];
            ids[s] = t;
            i = s;
        }
    }

    private void siftDownMin(float[] v, int i, int m) {
        siftDown(v, i, m, 1);
    }

    /** Heap sort of ids[0..m) by key: descending (largest first) or ascending. No boxing, O(m log m). */
    private void heapSort(float[] key, int m, boolean descending) {
        int sign = descending ? 1 : -1;
        for (int i = m / 2 - 1; i >= 0; i--) siftDown(key, i, m, sign);
        for (int end = m - 1; end > 0; end--) {
            int t = ids[0];
            ids[0] = ids[end];
            ids[end] = t;
            siftDown(key, 0, end, sign);
        }
    }

    private void sortByProbability(int m) {
        heapSort(probs, m, true);
    }

    /**
     * The largest probability {@code f} such that the tokens with probability at least {@code f} hold {@code topP}
     * of the mass: the smallest token of the nucleus, found by bisection over the bit patterns of positive floats
     * (which order like the floats). Ties at the floor are all kept.
     */
    static float nucleusFloor(float[] probs, int n, float topP) {
        int lo = 0; // floor 0 keeps everything: mass 1
        int hi = Float.floatToRawIntBits(VectorMath.max(probs, 0, n));
        while (lo < hi) {
            int mid = (int) (((long) lo + hi + 1) >>> 1);
            if (VectorMath.sumAtLeast(probs, 0, n, Float.intBitsToFloat(mid)) >= topP) lo = mid;
            else hi = mid - 1;
        }
        return Float.intBitsToFloat(lo);
    }

    private int nucleus(int m) {
        float cumulative = 0f;
        for (int i = 0; i < m; i++) {
            cumulative += probs[ids[i]];
            if (cumulative >= p.topP()) return i + 1;
        }
        return m;
    }

    /** Locally typical sampling: keep tokens whose surprise is closest to the entropy, up to typicalP mass. */
    private int typical(int m) {
        double entropy = 0;
        for (int i = 0; i < m; i++) {
            float q = probs[ids[i]];
            if (q > 0) entropy -= q * Math.log(q);
        }
        for (int i = 0; i < m; i++) {
            float q = probs[ids[i]];
            scratch[ids[i]] = (float) Math.abs(-Math.log(q) - entropy);
        }
        heapSort(scratch, m, false); // closest to the entropy first
        float cumulative = 0f;
        for (int i = 0; i < m; i++) {
            cumulative += probs[ids[i]];
            if (cumulative >= p.typicalP()) return i + 1;
        }
        return m;
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
