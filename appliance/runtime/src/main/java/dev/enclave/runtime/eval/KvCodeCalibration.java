package dev.enclave.runtime.eval;

import dev.enclave.runtime.backend.KvCode;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.backend.KvType;
import dev.enclave.runtime.backend.KvTransformCode;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.model.AttentionTap;
import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.ModelConfig;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;
import org.apache.commons.math3.linear.RealMatrix;

/**
 * Calibrates a transform-coded KV cache ({@link KvCode}) on text the model reads: its own writing by default (sampled at
 * temperature 1 from BOS: no data needed, and in the model's own domain), or chunks of a given text.
 *
 * <p>For each layer and KV head it collects the second moments of the pre-RoPE keys, of the pre-RoPE queries of the
 * heads that read them, and of the values, and a sample of keys and values. Keys: T = Vᵀ Q^½, with Q the queries'
 * second moment and V the eigenvectors of Q^½ K Q^½, so that a coefficient's squared error is its share of the
 * scores' error (near the query, where attention looks, RoPE's turn is small). Values: the same with W = Σ W_oᵀ W_o
 * over the heads that read them (the output's error after the projection). Bits go to coefficients by greedy
 * reverse water-filling over their variances (the Lloyd-Max distortion of a Gaussian per bit count), across all heads
 * and layers, each layer's keys and values weighted by what their distortion was measured to cost in KL divergence;
 * each coefficient's levels are a 1-D Lloyd-Max (k-means) codebook on its calibration values.
 */
public final class KvCodeCalibration {

    /** Distortion of a unit Gaussian under a Lloyd-Max quantizer of 0..8 bits. */
    static final double[] GAUSS_MSE = {1.0, 0.3634, 0.1175, 0.03454, 0.009497, 0.002499, 0.0006642, 0.0001719, 0.0000437};
    /** Calibration values kept per layer and KV head for the codebooks, at most. */
    static final int SAMPLES = 16384;
    /** The most bytes the kept keys and values may take together (a 1B model's 128 heads keep 4,096 each). */
    static final long SAMPLE_BYTES = 256L << 20;
    /** Sequences the sensitivity of each layer's keys and values is measured on. */
    static final int SENSITIVITY_SEQUENCES = 4;
    static final int SENSITIVITY_RUNS_PER_LAYER = 2;

    public interface Progress {
        void run(int done, int total);
    }

    private KvCodeCalibration() {
    }

    /**
     * Calibrates on {@code count} sequences of {@code length} tokens the model writes itself (temperature 1, seeded: the
     * same code every time for the same model), an end of text starting a new one from BOS.
     */
    public static KvCode selfCalibrated(TransformerModel model, int count, int length, double keyBits, double valueBits, boolean fixedSplit,
                                        long seed, String label, Progress progress) {
        ModelConfig c = model.config();
        Tokenizer tok = model.tokenizer();
        int n = Math.min(length, c.contextLength());
        if (n < 2 || count < 1) throw new IllegalArgumentException("calibration needs at least one sequence of 2 tokens");
        Collector col = new Collector(model, seed, (long) count * n);
        int start = tok.bos() >= 0 ? tok.bos() : 0;
        SplittableRandom random = new SplittableRandom(seed);
        double[] p = new double[c.vocabularySize()];
        List<int[]> sequences = new ArrayList<>();
        model.tap(col);
        try {
            for (int s = 0; s < count; s++) {
                InferenceState st = model.newState(n, KvPlan.F32);
                int[] seq = new int[n];
                int token = start;
                for (int i = 0; i < n; i++) {
                    seq[i] = token;
                    float[] logits = model.forward(st, token);
                    int next = sample(logits, p, random);
                    token = tok.isEndOfGeneration(next) || next == tok.eos() ? start : next;
                }
                sequences.add(seq);
                if (progress != null) progress.run(s + 1, count + SENSITIVITY_RUNS_PER_LAYER * c.blockCount());
            }
        } finally {
            model.tap(null);
        }
        return col.finish(sequences, keyBits, valueBits, fixedSplit, label, progress, count);
    }

    /** Calibrates on up to {@code chunks} chunks of {@code ctx} tokens of a text, BOS first, as perplexity reads them. */
    public static KvCode textCalibrated(TransformerModel model, String text, int ctx, int chunks, double keyBits, double valueBits,
                                        boolean fixedSplit, String label, Progress progress) {
        Tokenizer tok = model.tokenizer();
        int[] tokens = tok.encode(text, true, false);
        int n = Math.min(ctx, model.config().contextLength());
        int available = tokens.length / n;
        if (available < 1) throw new IllegalArgumentException("the calibration text has " + tokens.length + " tokens: at least " + n + " are needed");
        int count = Math.min(chunks, available);
        Collector col = new Collector(model, 1, (long) count * n);
        List<int[]> sequences = new ArrayList<>();
        model.tap(col);
        try {
            for (int i = 0; i < count; i++) {
                int[] chunk = Arrays.copyOfRange(tokens, i * n, (i + 1) * n);
                if (tok.bos() >= 0) chunk[0] = tok.bos();
                InferenceState st = model.newState(n, KvPlan.F32);
                model.ingest(st, chunk);
                sequences.add(chunk);
                if (progress != null) progress.run(i + 1, count + SENSITIVITY_RUNS_PER_LAYER * model.config().blockCount());
            }
        } finally {
            model.tap(null);
        }
        return col.finish(sequences, keyBits, valueBits, fixedSplit, label, progress, count);
    }

    private static int sample(float[] logits, double[] p, SplittableRandom random) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < p.length; i++) max = Math.max(max, logits[i]);
        double sum = 0;
        for (int i = 0; i < p.length; i++) sum += p[i] = Math.exp(logits[i] - max);
        double u = random.nextDouble() * sum;
        for (int i = 0; i < p.length; i++) {
            u -= p[i];
            if (u <= 0) return i;
        }
        return p.length - 1;
    }

    /** The moments and samples of every layer's KV heads, from the tap. */
    private static final class Collector implements AttentionTap {
        final TransformerModel model;
        final int layers, kvHeads, d, group, qDim, kvDim;
        final double[][][] kk, qq, vv;
        final float[][][] kSamples, vSamples;
        final long[][] seen;
        final SplittableRandom random;
        /** Rows kept per layer and KV head: no more than will be seen, nor than {@link #SAMPLE_BYTES} allow. */
        final int keep;

        Collector(TransformerModel model, long seed, long tokens) {
            this.model = model;
            ModelConfig c = model.config();
            layers = c.blockCount();
            kvHeads = c.headCountKv();
            d = c.headDim();
            group = c.headCount() / kvHeads;
            qDim = c.qDim();
            kvDim = c.kvDim();
            kk = new double[layers][kvHeads][d * d];
            qq = new double[layers][kvHeads][d * d];
            vv = new double[layers][kvHeads][d * d];
            keep = (int) Math.max(1, Math.min(Math.min(SAMPLES, tokens), SAMPLE_BYTES / (8L * layers * kvHeads * d)));
            kSamples = new float[layers][kvHeads][keep * d];
            vSamples = new float[layers][kvHeads][keep * d];
            seen = new long[layers][kvHeads];
            random = new SplittableRandom(seed ^ 0x5DEECE66DL);
        }

        @Override
        public void observe(int l, float[] q, float[] k, float[] v, int tokens) {
            for (int t = 0; t < tokens; t++) {
                for (int h = 0; h < kvHeads; h++) {
                    int ko = t * kvDim + h * d;
                    outer(kk[l][h], k, ko);
                    outer(vv[l][h], v, ko);
                    for (int j = 0; j < group; j++) outer(qq[l][h], q, t * qDim + (h * group + j) * d);
                    long n = seen[l][h]++;
                    // a uniform sample of the rows seen (reservoir)
                    long slot = n < keep ? n : random.nextLong(n + 1);
                    if (slot < keep) {
                        System.arraycopy(k, ko, kSamples[l][h], (int) slot * d, d);
                        System.arraycopy(v, ko, vSamples[l][h], (int) slot * d, d);
                    }
                }
            }
        }

        private void outer(double[] m, float[] x, int off) {
            for (int a = 0; a < d; a++) {
                double xa = x[off + a];
                int r = a * d;
                for (int b = 0; b < d; b++) m[r + b] += xa * x[off + b];
            }
        }

        /**
         * The code: each head's transform first; bits given per head (keys {@code keyBits}, values {@code valueBits});
         * each layer's keys and values then coded alone to measure how much their predicted distortion costs in KL
         * divergence; finally the bits given again over all heads of all layers by that measured cost (keys and values
         * apart when {@code fixedSplit}), and the codebooks made.
         */
        KvCode finish(List<int[]> sequences, double keyBits, double valueBits, boolean fixedSplit, String label, Progress progress, int done) {
            if (seen[0][0] == 0) throw new IllegalArgumentException("calibration saw no tokens");
            Basis[][][] bases = new Basis[layers][2][kvHeads];
            float[][] invFreq = new float[layers][];
            for (int l = 0; l < layers; l++) {
                double[][] wo = outputGram(l);
                invFreq[l] = model.ropeInvFreq(l);
                for (int h = 0; h < kvHeads; h++) {
                    int samples = (int) Math.min(seen[l][h], keep);
                    bases[l][0][h] = basis(kk[l][h], qq[l][h], kSamples[l][h], samples, seen[l][h]);
                    bases[l][1][h] = basis(vv[l][h], wo == null ? null : wo[h], vSamples[l][h], samples, seen[l][h]);
                }
            }
            int keyTotal = (int) Math.round(keyBits * d), valueTotal = (int) Math.round(valueBits * d);
            byte[][][][] bits = new byte[layers][2][kvHeads][];
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    bits[l][0][h] = allocate(new double[][] {bases[l][0][h].lambda}, keyTotal)[0];
                    bits[l][1][h] = allocate(new double[][] {bases[l][1][h].lambda}, valueTotal)[0];
                }
            }
            // how much each layer's keys (values) cost: KL divergence over the predicted distortion, one at a time
            double[][] cost = new double[layers][2];
            List<int[]> probe = sequences.subList(0, Math.min(SENSITIVITY_SEQUENCES, sequences.size()));
            float[][] reference = referenceLogProbs(probe);
            byte[][] fine = new byte[kvHeads][];
            for (int h = 0; h < kvHeads; h++) {
                fine[h] = new byte[d];
                Arrays.fill(fine[h], (byte) 8);
            }
            for (int l = 0; l < layers; l++) {
                for (int side = 0; side < 2; side++) {
                    // the other side at 8 bits per coefficient: near-lossless next to 2 or 3
                    KvTransformCode[] k = codes(bases[l][0], side == 0 ? bits[l][0] : fine), v = codes(bases[l][1], side == 1 ? bits[l][1] : fine);
                    KvCode one = new KvCode(d, new KvTransformCode[][] {k}, new KvTransformCode[][] {v}, new float[][] {invFreq[l]}, model.neoxRope(), "probe");
                    List<KvType> types = new ArrayList<>();
                    for (int x = 0; x < layers; x++) types.add(x == l ? KvType.coded(one.layer(0)) : KvType.F32);
                    double kld = kld(new KvPlan(types), probe, reference);
                    double predicted = 0;
                    for (int h = 0; h < kvHeads; h++) predicted += distortion(bases[l][side][h].lambda, bits[l][side][h]);
                    cost[l][side] = predicted > 0 ? Math.max(kld, 1e-12) / predicted : 0;
                    if (progress != null) progress.run(++done, sequences.size() + SENSITIVITY_RUNS_PER_LAYER * layers);
                }
            }
            // each layer's rows of keys and of values are rounded up to a byte: leave room for that in the budget
            int count = layers * kvHeads * d;
            if (fixedSplit) {
                globalAllocate(bases, cost, bits, 0, (int) Math.floor(keyBits * count) - 7 * layers);
                globalAllocate(bases, cost, bits, 1, (int) Math.floor(valueBits * count) - 7 * layers);
            } else {
                globalAllocate(bases, cost, bits, -1, (int) Math.floor((keyBits + valueBits) * count) - 14 * layers);
            }
            KvTransformCode[][] keys = new KvTransformCode[layers][], values = new KvTransformCode[layers][];
            for (int l = 0; l < layers; l++) {
                keys[l] = codes(bases[l][0], bits[l][0]);
                values[l] = codes(bases[l][1], bits[l][1]);
            }
            return new KvCode(d, keys, values, invFreq, model.neoxRope(), label);
        }

        /** Log-probabilities of every position of each sequence with an f32 cache. */
        private float[][] referenceLogProbs(List<int[]> sequences) {
            int vocab = model.config().vocabularySize();
            float[][] out = new float[sequences.size()][];
            for (int i = 0; i < out.length; i++) {
                int[] seq = sequences.get(i);
                float[] logits = new float[seq.length * vocab];
                model.ingestAllLogits(model.newState(seq.length, KvPlan.F32), seq, logits);
                for (int p = 0; p < seq.length; p++) logSoftmax(logits, p * vocab, vocab);
                out[i] = logits;
            }
            return out;
        }

        /** Mean KL divergence from the reference over every position of the sequences, with the cache {@code plan}. */
        private double kld(KvPlan plan, List<int[]> sequences, float[][] reference) {
            int vocab = model.config().vocabularySize();
            double sum = 0;
            long n = 0;
            for (int i = 0; i < sequences.size(); i++) {
                int[] seq = sequences.get(i);
                float[] logits = new float[seq.length * vocab];
                model.ingestAllLogits(model.newState(seq.length, plan), seq, logits);
                float[] ref = reference[i];
                for (int p = 0; p < seq.length; p++) {
                    logSoftmax(logits, p * vocab, vocab);
                    double k = 0;
                    for (int j = p * vocab, e = j + vocab; j < e; j++) k += Math.exp(ref[j]) * (ref[j] - logits[j]);
                    sum += Math.max(0, k);
                    n++;
                }
            }
            return sum / n;
        }

        /** Gives {@code total} bits over the coefficients of every head of every layer (of one side, or both when side is -1). */
        /** Gives {@code total} bits over the coefficients of every head of every layer (of one side, or both when side is -1). */
        private void globalAllocate(Basis[][][] bases, double[][] cost, byte[][][][] bits, int side, int total) {
            List<double[]> weighted = new ArrayList<>();
            for (int l = 0; l < layers; l++) {
                for (int s = 0; s < 2; s++) {
                    if (side >= 0 && s != side) continue;
                    for (int h = 0; h < kvHeads; h++) {
                        double[] w = bases[l][s][h].lambda.clone();
                        for (int i = 0; i < d; i++) w[i] *= cost[l][s];
                        weighted.add(w);
                    }
                }
            }
            byte[][] given = allocate(weighted.toArray(double[][]::new), total);
            int u = 0;
            for (int l = 0; l < layers; l++) {
                for (int s = 0; s < 2; s++) {
                    if (side >= 0 && s != side) continue;
                    for (int h = 0; h < kvHeads; h++) bits[l][s][h] = given[u++];
                }
            }
        }

        private static double distortion(double[] lambda, byte[] bits) {
            double s = 0;
            for (int i = 0; i < lambda.length; i++) s += lambda[i] * GAUSS_MSE[bits[i]];
            return s;
        }

        private KvTransformCode[] codes(Basis[] heads, byte[][] bits) {
            KvTransformCode[] out = new KvTransformCode[heads.length];
            for (int h = 0; h < heads.length; h++) out[h] = heads[h].code(bits[h], d);
            return out;
        }

        /** Per KV head, Σ W_oᵀ W_o over the query heads that read it (d × d), or null when the model has no attn_output. */
        private double[][] outputGram(int l) {
            GGUFTensorInfo t = model.gguf().tensor("blk." + l + ".attn_output.weight");
            if (t == null || t.rowLength() != qDim) return null;
            FloatTensor wo = FloatTensor.of(t.type(), model.gguf().tensorData(t), t.elements());
            int rows = (int) (t.elements() / qDim);
            double[][] gram = new double[kvHeads][d * d];
            float[] row = new float[qDim];
            for (int r = 0; r < rows; r++) {
                wo.copyTo((long) r * qDim, row, 0, qDim);
                for (int qh = 0; qh < qDim / d; qh++) outer(gram[qh / group], row, qh * d);
            }
            return gram;
        }

        /** One head's weighted KLT: T, T⁻¹ and the coefficients' variances, with its calibration sample. */
        private Basis basis(double[] second, double[] weight, float[] sample, int samples, long count) {
            double[][] c = new double[d][d], w = new double[d][d];
            for (int a = 0; a < d; a++) {
                for (int b = 0; b < d; b++) {
                    c[a][b] = second[a * d + b] / count;
                    w[a][b] = weight == null ? (a == b ? 1 : 0) : weight[a * d + b];
                }
            }
            double[][][] roots = roots(w);
            RealMatrix half = new Array2DRowRealMatrix(roots[0], false), invHalf = new Array2DRowRealMatrix(roots[1], false);
            RealMatrix cw = half.multiply(new Array2DRowRealMatrix(c, false)).multiply(half);
            symmetrize(cw);
            EigenDecomposition e = new EigenDecomposition(cw);
            double[] lambda = e.getRealEigenvalues();
            Integer[] order = new Integer[d];
            for (int i = 0; i < d; i++) order[i] = i;
            Arrays.sort(order, (x, y) -> Double.compare(lambda[y], lambda[x]));
            RealMatrix v = new Array2DRowRealMatrix(d, d);
            double[] lam = new double[d];
            for (int i = 0; i < d; i++) {
                v.setColumnVector(i, e.getEigenvector(order[i]));
                lam[i] = Math.max(0, lambda[order[i]]);
            }
            RealMatrix t = v.transpose().multiply(half), tinv = invHalf.multiply(v);
            float[] fwd = new float[d * d], inv = new float[d * d];
            for (int a = 0; a < d; a++) {
                for (int b = 0; b < d; b++) {
                    fwd[a * d + b] = (float) t.getEntry(a, b);
                    inv[a * d + b] = (float) tinv.getEntry(a, b);
                }
            }
            return new Basis(fwd, inv, lam, sample, samples);
        }

        /** W^½ and W^-½ of a symmetric positive semi-definite W (eigenvalues floored at 1e-6 of the largest). */
        private double[][][] roots(double[][] w) {
            RealMatrix m = new Array2DRowRealMatrix(w, true);
            symmetrize(m);
            EigenDecomposition e = new EigenDecomposition(m);
            double[] ev = e.getRealEigenvalues();
            double max = 0;
            for (double x : ev) max = Math.max(max, x);
            if (max <= 0) max = 1;
            RealMatrix u = e.getV();
            double[][] half = new double[d][d], inv = new double[d][d];
            for (int k = 0; k < d; k++) {
                double lk = Math.max(ev[k], 1e-6 * max);
                double s = Math.sqrt(lk), si = 1 / s;
                for (int a = 0; a < d; a++) {
                    double ua = u.getEntry(a, k);
                    for (int b = 0; b < d; b++) {
                        double p = ua * u.getEntry(b, k);
                        half[a][b] += s * p;
                        inv[a][b] += si * p;
                    }
                }
            }
            return new double[][][] {half, inv};
        }

        private void symmetrize(RealMatrix m) {
            for (int a = 0; a < d; a++) {
                for (int b = a + 1; b < d; b++) {
                    double x = (m.getEntry(a, b) + m.getEntry(b, a)) / 2;
                    m.setEntry(a, b, x);
                    m.setEntry(b, a, x);
                }
            }
        }
    }

    /** A head's transform before bits are given, and its calibration values for the codebooks. */
    private record Basis(float[] fwd, float[] inv, double[] lambda, float[] sample, int samples) {
        /** The code with these bits: a Lloyd-Max codebook for each coefficient that gets any. */
        KvTransformCode code(byte[] bits, int d) {
            float[][] levels = new float[d][];
            double[] y = new double[samples];
            for (int i = 0; i < d; i++) {
                if (bits[i] == 0) continue;
                for (int s = 0; s < samples; s++) {
                    double acc = 0;
                    for (int j = 0; j < d; j++) acc += fwd[i * d + j] * sample[s * d + j];
                    y[s] = acc;
                }
                levels[i] = lloyd(y, samples, 1 << bits[i]);
            }
            return new KvTransformCode(d, fwd, inv, bits, levels);
        }
    }

    private static void logSoftmax(float[] x, int off, int n) {
        float lse = (float) Perplexity.logSumExp(x, off, n);
        for (int i = 0; i < n; i++) x[off + i] -= lse;
    }

    /**
     * Greedy reverse water-filling: each next bit of {@code totalBits} to the coefficient (of any of the arrays of
     * variances) whose distortion it lowers most, at most 8 each.
     */
    static byte[][] allocate(double[][] variances, int totalBits) {
        record Candidate(double gain, int unit, int i) {
        }
        java.util.PriorityQueue<Candidate> queue = new java.util.PriorityQueue<>((a, b) -> Double.compare(b.gain, a.gain));
        byte[][] bits = new byte[variances.length][];
        for (int u = 0; u < variances.length; u++) {
            bits[u] = new byte[variances[u].length];
            for (int i = 0; i < variances[u].length; i++) queue.add(new Candidate(variances[u][i] * (GAUSS_MSE[0] - GAUSS_MSE[1]), u, i));
        }
        for (int n = 0; n < totalBits && !queue.isEmpty(); n++) {
            Candidate c = queue.poll();
            int now = ++bits[c.unit][c.i];
            if (now < 8) queue.add(new Candidate(variances[c.unit][c.i] * (GAUSS_MSE[now] - GAUSS_MSE[now + 1]), c.unit, c.i));
        }
        return bits;
    }

    /** A 1-D Lloyd-Max codebook of {@code levels} levels for the first {@code n} values of {@code y} (sorted after). */
    static float[] lloyd(double[] y, int n, int levels) {
        double[] x = Arrays.copyOf(y, n);
        Arrays.sort(x);
        double[] prefix = new double[n + 1];
        for (int i = 0; i < n; i++) prefix[i + 1] = prefix[i] + x[i];
        double[] c = new double[levels];
        for (int j = 0; j < levels; j++) c[j] = x[Math.min(n - 1, (int) ((j + 0.5) * n / levels))];
        int[] bound = new int[levels + 1];
        for (int iter = 0; iter < 60; iter++) {
            bound[0] = 0;
            bound[levels] = n;
            for (int j = 1; j < levels; j++) {
                double mid = (c[j - 1] + c[j]) / 2;
                int at = Arrays.binarySearch(x, mid);
                bound[j] = Math.max(bound[j - 1], at < 0 ? -at - 1 : at);
            }
            boolean moved = false;
            for (int j = 0; j < levels; j++) {
                if (bound[j + 1] > bound[j]) {
                    double m = (prefix[bound[j + 1]] - prefix[bound[j]]) / (bound[j + 1] - bound[j]);
                    moved |= m != c[j];
                    c[j] = m;
                }
            }
            if (!moved) break;
        }
        Arrays.sort(c);
        float[] out = new float[levels];
        for (int j = 0; j < levels; j++) out[j] = (float) c[j];
        for (int j = 1; j < levels; j++) if (out[j] < out[j - 1]) out[j] = out[j - 1];
        return out;
    }
}
