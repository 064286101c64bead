package dev.enclave.runtime.eval;

import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.model.TransformerModel;
import java.util.ArrayList;
import java.util.List;

/** Tests' measure of a KV cache type: mean KL divergence of the scored positions from the f32 cache's. */
public final class KvDivergence {

    private KvDivergence() {
    }

    /** Over {@code chunks} chunks of {@code ctx} tokens of the text, as perplexity scores them. */
    public static double kld(TransformerModel m, KvPlan plan, String text, int ctx, int chunks) {
        int vocab = m.config().vocabularySize();
        List<float[]> ref = new ArrayList<>();
        Perplexity.run(m, KvPlan.F32, text, ctx, ctx, chunks, null, (logits, off, n, target) -> ref.add(logProbs(logits, off, n)));
        double[] sum = {0};
        int[] at = {0};
        Perplexity.run(m, plan, text, ctx, ctx, chunks, null, (logits, off, n, target) -> {
            float[] p = logProbs(logits, off, n), r = ref.get(at[0]++);
            double k = 0;
            for (int i = 0; i < vocab; i++) k += Math.exp(r[i]) * (r[i] - p[i]);
            sum[0] += Math.max(0, k);
        });
        return sum[0] / at[0];
    }

    private static float[] logProbs(float[] logits, int off, int n) {
        double lse = Perplexity.logSumExp(logits, off, n);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) out[i] = (float) (logits[off + i] - lse);
        return out;
    }
}
