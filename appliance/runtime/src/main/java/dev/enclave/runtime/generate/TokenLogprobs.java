package dev.enclave.runtime.generate;

/**
 * Log-probabilities of a generated token under the model's own distribution (before sampling adjustments), and of
 * the most likely alternatives, best first.
 */
public record TokenLogprobs(int token, float logprob, int[] topTokens, float[] topLogprobs) {

    /** From raw logits: log-softmax at {@code token} and the {@code top} most likely ids. */
    public static TokenLogprobs of(float[] logits, int token, int top) {
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (float l : logits) sum += Math.exp(l - max);
        float logZ = (float) (max + Math.log(sum));
        int k = Math.min(top, logits.length);
        int[] ids = new int[k];
        float[] lps = new float[k];
        java.util.Arrays.fill(ids, -1);
        for (int i = 0; i < logits.length; i++) {
            float v = logits[i];
            int pos = k - 1;
            if (k == 0 || (ids[pos] >= 0 && v <= logits[ids[pos]])) continue;
            while (pos > 0 && (ids[pos - 1] < 0 || v > logits[ids[pos - 1]])) {
                ids[pos] = ids[pos - 1];
                pos--;
            }
            ids[pos] = i;
        }
        for (int i = 0; i < k; i++) lps[i] = logits[ids[i]] - logZ;
        return new TokenLogprobs(token, logits[token] - logZ, ids, lps);
    }
}
