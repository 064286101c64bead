package dev.enclave.runtime.eval;

import dev.enclave.runtime.backend.KvFormat;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.backend.KvType;
import dev.enclave.runtime.model.ModelConfig;
import dev.enclave.runtime.model.TransformerModel;
import java.util.ArrayList;
import java.util.List;

/**
 * Adaptive KV cache types: measures how much each layer's keys and each layer's values disturb the model's output when
 * only they are stored at a lower precision (mean KL divergence from an f32 cache over a calibration text), then lowers
 * the (layer, keys or values) whose next step down costs least per bit saved, until the whole cache fits a budget of
 * bits per value. Sensitivities are measured one at a time and taken as additive.
 */
public final class KvCalibration {

    /** From most to fewest bits: 8-bit plain, then rotated 4, 3 and 2 bits. */
    static final List<Level> LADDER = List.of(new Level(KvFormat.Q8, false), new Level(KvFormat.Q4, true),
            new Level(KvFormat.Q3, true), new Level(KvFormat.Q2, true));

    record Level(KvFormat format, boolean rotated) {
    }

    /** The chosen plan, its average bits per value, and the measured cost of each choice. */
    public record Result(KvPlan plan, double bitsPerValue, double[][][] kld, int runs) {
    }

    public interface Progress {
        void run(int done, int total);
    }

    private KvCalibration() {
    }

    public static Result choose(TransformerModel model, String text, int ctx, int chunks, double budgetBits, Progress progress) {
        ModelConfig c = model.config();
        int layers = c.blockCount();
        int vocab = c.vocabularySize();
        int scored = ctx - 1 - ctx / 2;
        // the reference: every scored position's log-probabilities with an f32 cache
        float[][] ref = new float[chunks * scored][];
        int[] at = {0};
        Perplexity.run(model, KvPlan.F32, text, ctx, ctx, chunks, null, (logits, off, n, target) -> {
            float[] lp = new float[n];
            logSoftmax(logits, off, n, lp);
            ref[at[0]++] = lp;
        });
        int total = layers * 2 * (LADDER.size() - 1);
        // kld[l][side][level]: level 0 (8-bit everywhere else too) is the base
        double[][][] kld = new double[layers][2][LADDER.size()];
        double base = kldOf(model, uniform(layers, 0), text, ctx, chunks, ref, vocab);
        int done = 0;
        for (int l = 0; l < layers; l++) {
            for (int side = 0; side < 2; side++) {
                kld[l][side][0] = base;
                for (int level = 1; level < LADDER.size(); level++) {
                    int[][] levels = uniform(layers, 0);
                    levels[l][side] = level;
                    kld[l][side][level] = kldOf(model, levels, text, ctx, chunks, ref, vocab);
                    if (progress != null) progress.run(++done, total);
                }
            }
        }
        // greedy: the cheapest step down per bit saved, until the budget holds
        int[][] levels = uniform(layers, 0);
        int headDim = c.headDim(), kvDim = c.kvDim();
        while (plan(levels).bitsPerValue(layers, kvDim, headDim) > budgetBits) {
            int bestL = -1, bestSide = -1;
            double bestCost = Double.POSITIVE_INFINITY;
            for (int l = 0; l < layers; l++) {
                for (int side = 0; side < 2; side++) {
                    int level = levels[l][side];
                    if (level + 1 >= LADDER.size()) continue;
                    double saved = LADDER.get(level).format().bitsPerValue(headDim) - LADDER.get(level + 1).format().bitsPerValue(headDim);
                    double cost = Math.max(0, kld[l][side][level + 1] - kld[l][side][level]) / saved;
                    if (cost < bestCost) {
                        bestCost = cost;
                        bestL = l;
                        bestSide = side;
                    }
                }
            }
            if (bestL < 0) break; // everything at the lowest level: the budget cannot be met
            levels[bestL][bestSide]++;
        }
        KvPlan p = plan(levels);
        return new Result(p, p.bitsPerValue(layers, kvDim, headDim), kld, total + 2);
    }

    private static double kldOf(TransformerModel model, int[][] levels, String text, int ctx, int chunks, float[][] ref, int vocab) {
        double[] sum = {0};
        int[] at = {0};
        float[] lp = new float[vocab];
        Perplexity.run(model, plan(levels), text, ctx, ctx, chunks, null, (logits, off, n, target) -> {
            logSoftmax(logits, off, n, lp);
            float[] r = ref[at[0]++];
            double k = 0;
            for (int i = 0; i < n; i++) k += Math.exp(r[i]) * (r[i] - lp[i]);
            sum[0] += Math.max(0, k);
        });
        return sum[0] / at[0];
    }

    private static int[][] uniform(int layers, int level) {
        int[][] l = new int[layers][2];
        for (int[] x : l) java.util.Arrays.fill(x, level);
        return l;
    }

    static KvPlan plan(int[][] levels) {
        List<KvType> types = new ArrayList<>();
        for (int[] l : levels) {
            Level k = LADDER.get(l[0]), v = LADDER.get(l[1]);
            types.add(new KvType(k.format(), k.rotated(), v.format(), v.rotated()));
        }
        return new KvPlan(types);
    }

    private static void logSoftmax(float[] logits, int off, int n, float[] out) {
        double lse = Perplexity.logSumExp(logits, off, n);
        for (int i = 0; i < n; i++) out[i] = (float) (logits[off + i] - lse);
    }
}
