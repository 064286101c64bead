package dev.enclave.runtime.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFValueType;
import dev.enclave.runtime.gguf.GGUFWriter;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The architectures without shared reference files (qwen3, gemma2, gemma3): small random models written here,
 * run by the runtime (token by token and batched) and by a plain float64 forward pass in this test that follows
 * llama.cpp's graphs for those architectures (q/k RMSNorm per head; Gemma's sqrt(d) embedding scale, GeGLU,
 * post-attention and post-FFN norms, attention and final soft-capping, sliding-window layers).
 */
class ArchitectureVariantsTest {

    static final int DIM = 64, HEADS = 4, KV = 2, HD = 16, FF = 128, LAYERS = 3, WINDOW = 3;

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "gemma2", "gemma3", "qwen2", "llama"})
    void runtimeMatchesPlainFloat64Forward(String arch) throws Exception {
        Map<String, float[]> w = new HashMap<>();
        byte[] file = build(arch, w);
        int[] tokens = {1, 403, 407, 261, 378, 432, 383};
        try (TransformerModel m = TransformerModel.load(arch, GGUFFile.read(file))) {
            InferenceState s = m.newState(16);
            float[] single = null;
            for (int t : tokens) single = m.forward(s, t).clone();
            InferenceState b = m.newState(16);
            float[] batched = m.ingest(b, tokens).clone();
            double[] ref = Reference.forward(arch, w, tokens, m.config().vocabularySize());
            double errSingle = 0, errBatch = 0;
            for (int i = 0; i < ref.length; i++) {
                errSingle = Math.max(errSingle, Math.abs(single[i] - ref[i]));
                errBatch = Math.max(errBatch, Math.abs(batched[i] - ref[i]));
            }
            assertTrue(errSingle < 1e-4, arch + ": token-by-token vs float64, max err " + errSingle);
            assertTrue(errBatch < 1e-4, arch + ": batched vs float64, max err " + errBatch);
        }
    }

    static byte[] build(String arch, Map<String, float[]> w) throws Exception {
        GGUFWriter g = new GGUFWriter();
        int vocab;
        try (GGUFFile stories = GGUFFile.open(SharedData.model("stories260K.gguf"))) {
            for (String k : stories.metadata().keySet()) if (k.startsWith("tokenizer.")) g.put(k, stories.typedValue(k));
            vocab = stories.getArray("tokenizer.ggml.tokens").length();
        }
        g.put("general.architecture", arch);
        u32(g, arch + ".context_length", 64);
        u32(g, arch + ".embedding_length", DIM);
        u32(g, arch + ".block_count", LAYERS);
        u32(g, arch + ".feed_forward_length", FF);
        u32(g, arch + ".attention.head_count", HEADS);
        u32(g, arch + ".attention.head_count_kv", KV);
        u32(g, arch + ".attention.key_length", HD);
        u32(g, arch + ".attention.value_length", HD);
        g.put(arch + ".rope.freq_base", 10000f);
        g.put(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
        if (arch.startsWith("gemma")) u32(g, arch + ".attention.sliding_window", WINDOW);
        if (arch.equals("gemma2")) {
            g.put("gemma2.attn_logit_softcapping", 2.5f);   // small caps so that capping really bites
            g.put("gemma2.final_logit_softcapping", 3.0f);
        }
        SplittableRandom r = new SplittableRandom(arch.hashCode());
        tensor(g, w, r, "token_embd.weight", 0.5, DIM, vocab);
        norm(g, w, r, "output_norm.weight", DIM);
        if (!arch.startsWith("gemma")) tensor(g, w, r, "output.weight", 0.3, DIM, vocab);
        for (int l = 0; l < LAYERS; l++) {
            String p = "blk." + l + ".";
            norm(g, w, r, p + "attn_norm.weight", DIM);
            tensor(g, w, r, p + "attn_q.weight", 0.3, DIM, HEADS * HD);
            tensor(g, w, r, p + "attn_k.weight", 0.3, DIM, KV * HD);
            tensor(g, w, r, p + "attn_v.weight", 0.3, DIM, KV * HD);
            tensor(g, w, r, p + "attn_output.weight", 0.3, HEADS * HD, DIM);
            if (arch.equals("qwen2")) {
                tensor(g, w, r, p + "attn_q.bias", 0.2, HEADS * HD);
                tensor(g, w, r, p + "attn_k.bias", 0.2, KV * HD);
                tensor(g, w, r, p + "attn_v.bias", 0.2, KV * HD);
            }
            if (arch.equals("qwen3") || arch.equals("gemma3")) {
                norm(g, w, r, p + "attn_q_norm.weight", HD);
                norm(g, w, r, p + "attn_k_norm.weight", HD);
            }
            if (arch.startsWith("gemma")) {
                norm(g, w, r, p + "post_attention_norm.weight", DIM);
                norm(g, w, r, p + "post_ffw_norm.weight", DIM);
            }
            norm(g, w, r, p + "ffn_norm.weight", DIM);
            tensor(g, w, r, p + "ffn_gate.weight", 0.3, DIM, FF);
            tensor(g, w, r, p + "ffn_up.weight", 0.3, DIM, FF);
            tensor(g, w, r, p + "ffn_down.weight", 0.3, FF, DIM);
        }
        return g.toBytes();
    }

    static void u32(GGUFWriter g, String k, int v) {
        g.put(k, new GGUFWriter.Typed(GGUFValueType.UINT32, v));
    }

    static void tensor(GGUFWriter g, Map<String, float[]> w, SplittableRandom r, String name, double scale, long... dims) {
        int n = 1;
        for (long d : dims) n *= (int) d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextDouble(-1, 1) * scale);
        w.put(name, v);
        g.tensor(name, v, dims);
    }

    static void norm(GGUFWriter g, Map<String, float[]> w, SplittableRandom r, String name, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextDouble(0.5, 1.5);
        w.put(name, v);
        g.tensor(name, v, n);
    }

    /** A plain float64 forward pass over all positions, written from the architectures' descriptions. */
    static final class Reference {
        static double[] forward(String arch, Map<String, float[]> w, int[] tokens, int vocab) {
            boolean gemma = arch.startsWith("gemma");
            boolean neox = !arch.equals("llama");
            int n = tokens.length;
            double[][] x = new double[n][DIM];
            for (int t = 0; t < n; t++) {
                for (int i = 0; i < DIM; i++) x[t][i] = w.get("token_embd.weight")[tokens[t] * DIM + i] * (gemma ? Math.sqrt(DIM) : 1);
            }
            double eps = 1e-6;
            for (int l = 0; l < LAYERS; l++) {
                String p = "blk." + l + ".";
                boolean sliding = arch.equals("gemma2") ? l % 2 == 0 : arch.equals("gemma3") && (l + 1) % 6 != 0;
                double base = arch.equals("gemma3") && sliding ? 10000 : 10000;
                double[][] q = new double[n][], k = new double[n][], v = new double[n][];
                for (int t = 0; t < n; t++) {
                    double[] xn = rms(x[t], w.get(p + "attn_norm.weight"), eps);
                    q[t] = mat(w.get(p + "attn_q.weight"), xn, HEADS * HD);
                    k[t] = mat(w.get(p + "attn_k.weight"), xn, KV * HD);
                    v[t] = mat(w.get(p + "attn_v.weight"), xn, KV * HD);
                    if (w.containsKey(p + "attn_q.bias")) {
                        add(q[t], w.get(p + "attn_q.bias"));
                        add(k[t], w.get(p + "attn_k.bias"));
                        add(v[t], w.get(p + "attn_v.bias"));
                    }
                    for (int h = 0; h < HEADS; h++) {
                        if (w.containsKey(p + "attn_q_norm.weight")) headNorm(q[t], h, w.get(p + "attn_q_norm.weight"), eps);
                        rope(q[t], h * HD, t, base, neox);
                    }
                    for (int h = 0; h < KV; h++) {
                        if (w.containsKey(p + "attn_k_norm.weight")) headNorm(k[t], h, w.get(p + "attn_k_norm.weight"), eps);
                        rope(k[t], h * HD, t, base, neox);
                    }
                }
                for (int t = 0; t < n; t++) {
                    double[] att = new double[HEADS * HD];
                    for (int h = 0; h < HEADS; h++) {
                        int kh = h / (HEADS / KV);
                        int first = sliding ? Math.max(0, t - WINDOW + 1) : 0;
                        double[] s = new double[t + 1];
                        double max = Double.NEGATIVE_INFINITY;
                        for (int u = first; u <= t; u++) {
                            double d = 0;
                            for (int i = 0; i < HD; i++) d += q[t][h * HD + i] * k[u][kh * HD + i];
                            d /= Math.sqrt(HD);
                            if (arch.equals("gemma2")) d = Math.tanh(d / 2.5) * 2.5;
                            s[u] = d;
                            max = Math.max(max, d);
                        }
                        double sum = 0;
                        for (int u = first; u <= t; u++) sum += (s[u] = Math.exp(s[u] - max));
                        for (int u = first; u <= t; u++) for (int i = 0; i < HD; i++) att[h * HD + i] += s[u] / sum * v[u][kh * HD + i];
                    }
                    double[] o = mat(w.get(p + "attn_output.weight"), att, DIM);
                    if (gemma) o = rms(o, w.get(p + "post_attention_norm.weight"), eps);
                    add(x[t], o);
                    double[] xn = rms(x[t], w.get(p + "ffn_norm.weight"), eps);
                    double[] gate = mat(w.get(p + "ffn_gate.weight"), xn, FF);
                    double[] up = mat(w.get(p + "ffn_up.weight"), xn, FF);
                    double[] hdn = new double[FF];
                    for (int i = 0; i < FF; i++) {
                        double a = gate[i];
                        double act = gemma ? 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a))) : a / (1 + Math.exp(-a));
                        hdn[i] = act * up[i];
                    }
                    double[] down = mat(w.get(p + "ffn_down.weight"), hdn, DIM);
                    if (gemma) down = rms(down, w.get(p + "post_ffw_norm.weight"), eps);
                    add(x[t], down);
                }
            }
            double[] xn = rms(x[n - 1], w.get("output_norm.weight"), eps);
            double[] logits = mat(w.get(gemma ? "token_embd.weight" : "output.weight"), xn, vocab);
            if (arch.equals("gemma2")) for (int i = 0; i < vocab; i++) logits[i] = Math.tanh(logits[i] / 3.0) * 3.0;
            return logits;
        }

        static double[] rms(double[] v, float[] weight, double eps) {
            double ss = 0;
            for (double a : v) ss += a * a;
            double sc = 1 / Math.sqrt(ss / v.length + eps);
            double[] r = new double[v.length];
            for (int i = 0; i < v.length; i++) r[i] = v[i] * sc * weight[i];
            return r;
        }

        static void headNorm(double[] v, int h, float[] weight, double eps) {
            double[] part = java.util.Arrays.copyOfRange(v, h * HD, h * HD + HD);
            double[] r = rms(part, weight, eps);
            System.arraycopy(r, 0, v, h * HD, HD);
        }

        static double[] mat(float[] m, double[] x, int rows) {
            int cols = x.length;
            double[] r = new double[rows];
            for (int i = 0; i < rows; i++) {
                double s = 0;
                for (int j = 0; j < cols; j++) s += m[i * cols + j] * x[j];
                r[i] = s;
            }
            return r;
        }

        static void add(double[] a, double[] b) {
            for (int i = 0; i < a.length; i++) a[i] += b[i];
        }

        static void add(double[] a, float[] b) {
            for (int i = 0; i < a.length; i++) a[i] += b[i];
        }

        static void rope(double[] v, int off, int pos, double base, boolean neox) {
            for (int i = 0; i < HD / 2; i++) {
                double theta = pos * Math.pow(base, -2.0 * i / HD);
                int a = neox ? off + i : off + 2 * i;
                int b = neox ? off + i + HD / 2 : off + 2 * i + 1;
                double x0 = v[a], x1 = v[b];
                v[a] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
                v[b] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
            }
        }
    }
}
