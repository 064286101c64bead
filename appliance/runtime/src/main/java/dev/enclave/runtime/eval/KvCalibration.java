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

    /** Per head: the rotated ladder (a tensor's heads share one rotation). */
    static final List<Level> HEAD_LADDER = List.of(new Level(KvFormat.Q8, true), new Level(KvFormat.Q4, true),
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
        return choose(model, text, ctx, chunks, budgetBits, false, progress);
    }

    /**
     * As above; with {@code perHead} each KV head of each layer's keys and values is a unit of its own (heads differ:
     * on tinystories-hd64, one layer's head at 2 bits moved PPL by +0.9% and its other head by +1.6%), on the rotated
     * ladder. {@code kld[l][side * heads + h][level]}.
     */
    public static Result choose(TransformerModel model, String text, int ctx, int chunks, double budgetBits, boolean perHead, Progress progress) {
        ModelConfig c = model.config();
        int layers = c.blockCount();
        int vocab = c.vocabularySize();
        int heads = perHead ? c.headCountKv() : 1;
        List<Level> ladder = perHead ? HEAD_LADDER : LADDER;
        int scored = ctx - 1 - ctx / 2;
        // the reference: every scored position's log-probabilities with an f32 cache
        float[][] ref = new float[chunks * scored][];
        int[] at = {0};
        Perplexity.run(model, KvPlan.F32, text, ctx, ctx, chunks, null, (logits, off, n, target) -> {
            float[] lp = new float[n];
            logSoftmax(logits, off, n, lp);
            ref[at[0]++] = lp;
        });
        int units = 2 * heads;
        int total = layers * units * (ladder.size() - 1);
        // kld[l][unit][level]: level 0 (8-bit everywhere else too) is the base
        double[][][] kld = new double[layers][units][ladder.size()];
        double base = kldOf(model, plan(uniform(layers, units, 0), heads, ladder), text, ctx, chunks, ref, vocab);
        int done = 0;
        for (int l = 0; l < layers; l++) {
            for (int u = 0; u < units; u++) {
                kld[l][u][0] = base;
                for (int level = 1; level < ladder.size(); level++) {
                    int[][] levels = uniform(layers, units, 0);
                    levels[l][u] = level;
                    kld[l][u][level] = kldOf(model, plan(levels, heads, ladder), text, ctx, chunks, ref, vocab);
                    if (progress != null) progress.run(++done, total);
                }
            }
        }
        // greedy: the cheapest step down per bit saved, until the budget holds
        int[][] levels = uniform(layers, units, 0);
        int headDim = c.headDim(), kvDim = c.kvDim();
        while (plan(levels, heads, ladder).bitsPerValue(layers, kvDim, headDim) > budgetBits) {
            int bestL = -1, bestU = -1;
            double bestCost = Double.POSITIVE_INFINITY;
            for (int l = 0; l < layers; l++) {
                for (int u = 0; u < units; u++) {
                    int level = levels[l][u];
                    if (level + 1 >= ladder.size()) continue;
                    double saved = ladder.get(level).format().bitsPerValue(headDim) - ladder.get(level + 1).format().bitsPerValue(headDim);
                    double cost = Math.max(0, kld[l][u][level + 1] - kld[l][u][level]) / saved;
                    if (cost < bestCost) {
                        bestCost = cost;
                        bestL = l;
                        bestU = u;
                    }
                }
            }
            if (bestL < 0) break; // everything at the lowest level: the budget cannot be met
            levels[bestL][bestU]++;
        }
        KvPlan p = plan(levels, heads, ladder);
        return new Result(p, p.bitsPerValue(layers, kvDim, headDim), kld, total + 2);
    }

    private static double kldOf(TransformerModel model, KvPlan plan, String text, int ctx, int chunks, float[][] ref, int vocab) {
        double[] sum = {0};
        int[] at = {0};
        float[] lp = new float[vocab];
        Perplexity.run(model, plan, text, ctx, ctx, chunks, null, (logits, off, n, target) -> {
            logSoftmax(logits, off, n, lp);
            float[] r = ref[at[0]++];
            double k = 0;
            for (int i = 0; i < n; i++) k += Math.exp(r[i]) * (r[i] - lp[i]);
            sum[0] += Math.max(0, k);
        });
        return sum[0] / at[0];
    }

    private static int[][] uniform(int layers, int units, int level) {
        int[][] l = new int[layers][units];
        for (int[] x : l) java.util.Arrays.fill(x, level);
        return l;
    }

    static KvPlan plan(int[][] levels) {
        return plan(levels, 1, LADDER);
    }

    /** levels[l][side * heads + h]: a uniform type per layer when {@code heads} is 1, else per-head formats. */
    static KvPlan plan(int[][] levels, int heads, List<Level> ladder) {
        List<KvType> types = new ArrayList<>();
        for (int[] l : levels) {
            if (heads == 1) {
                Level k = ladder.get(l[0]), v = ladder.get(l[1]);
                types.add(new KvType(k.format(), k.rotated(), v.format(), v.rotated()));
                continue;
            }
            List<KvFormat> kh = new ArrayList<>(), vh = new ArrayList<>();
            for (int h = 0; h < heads; h++) {
                kh.add(ladder.get(l[h]).format());
                vh.add(ladder.get(l[heads + h]).format());
            }
            types.add(KvType.perHead(kh, true, vh, true));
        }
        return new KvPlan(types);
    }

    private static void logSoftmax(float[] logits, int off, int n, float[] out) {
        double lse = Perplexity.logSumExp(logits, off, n);
        for (int i = 0; i < n; i++) out[i] = (float) (logits[off + i] - lse);
    }
}
