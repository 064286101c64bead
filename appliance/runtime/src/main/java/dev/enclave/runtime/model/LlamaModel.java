package dev.enclave.runtime.model;

import dev.enclave.runtime.backend.KernelBackend;
import dev.enclave.runtime.backend.cpu.CpuBackend;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFFormatException;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The Llama forward pass: token embedding, then per block RMSNorm, attention with rotary positions and grouped
 * KV heads over the sequence's KV cache, RMSNorm, SwiGLU feed-forward; a final RMSNorm and the output
 * projection. Weights stay in the memory-mapped file in whatever ggml type they were stored.
 */
public final class LlamaModel implements AutoCloseable {

    private final String name;
    private final GGUFFile gguf;
    private final LlamaConfig config;
    private final Tokenizer tokenizer;
    private final KernelBackend ops;

    private final FloatTensor tokenEmbedding;
    private final FloatTensor outputNorm;
    private final FloatTensor output;
    private final FloatTensor[] attnNorm, wq, wk, wv, wo, ffnNorm, wGate, wUp, wDown;
    /** Rotary frequencies per pair index, precomputed once. */
    private final float[] ropeInvFreq;

    private LlamaModel(String name, GGUFFile gguf, KernelBackend ops) {
        this.name = name;
        this.gguf = gguf;
        this.ops = ops;
        this.config = LlamaConfig.from(gguf);
        this.tokenizer = Tokenizer.fromGGUF(gguf);
        LlamaConfig c = config;
        tokenEmbedding = tensor("token_embd.weight", c.embeddingLength(), c.vocabularySize());
        outputNorm = tensor("output_norm.weight", c.embeddingLength());
        // Tied embeddings: without output.weight the embedding matrix doubles as the output projection.
        output = gguf.tensor("output.weight") != null
                ? tensor("output.weight", c.embeddingLength(), c.vocabularySize())
                : tokenEmbedding;
        int n = c.blockCount();
        attnNorm = new FloatTensor[n];
        wq = new FloatTensor[n];
        wk = new FloatTensor[n];
        wv = new FloatTensor[n];
        wo = new FloatTensor[n];
        ffnNorm = new FloatTensor[n];
        wGate = new FloatTensor[n];
        wUp = new FloatTensor[n];
        wDown = new FloatTensor[n];
        int qDim = c.headCount() * c.headDim();
        for (int l = 0; l < n; l++) {
            String p = "blk." + l + ".";
            attnNorm[l] = tensor(p + "attn_norm.weight", c.embeddingLength());
            wq[l] = tensor(p + "attn_q.weight", c.embeddingLength(), qDim);
            wk[l] = tensor(p + "attn_k.weight", c.embeddingLength(), c.kvDim());
            wv[l] = tensor(p + "attn_v.weight", c.embeddingLength(), c.kvDim());
            wo[l] = tensor(p + "attn_output.weight", qDim, c.embeddingLength());
            ffnNorm[l] = tensor(p + "ffn_norm.weight", c.embeddingLength());
            wGate[l] = tensor(p + "ffn_gate.weight", c.embeddingLength(), c.feedForwardLength());
            wUp[l] = tensor(p + "ffn_up.weight", c.embeddingLength(), c.feedForwardLength());
            wDown[l] = tensor(p + "ffn_down.weight", c.feedForwardLength(), c.embeddingLength());
        }
        int pairs = c.ropeDimensions() / 2;
        ropeInvFreq = new float[pairs];
        for (int i = 0; i < pairs; i++) {
            ropeInvFreq[i] = (float) Math.pow(c.ropeFreqBase(), -2.0 * i / c.ropeDimensions());
        }
    }

    /** Memory-maps a GGUF model file and prepares it for inference on the CPU. */
    public static LlamaModel load(Path path) throws IOException {
        GGUFFile gguf = GGUFFile.open(path);
        try {
            return new LlamaModel(modelName(path.getFileName().toString()), gguf, CpuBackend.instance());
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    /** Wraps an already-parsed GGUF file; the model closes it when closed. */
    public static LlamaModel load(String name, GGUFFile gguf) {
        try {
            return new LlamaModel(name, gguf, CpuBackend.instance());
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    static String modelName(String fileName) {
        return fileName.endsWith(".gguf") ? fileName.substring(0, fileName.length() - 5) : fileName;
    }

    private FloatTensor tensor(String name, long... expectedDims) {
        GGUFTensorInfo t = gguf.tensor(name);
        if (t == null) {
            throw new GGUFFormatException("model is missing tensor '" + name + "'");
        }
        long expected = 1;
        for (long d : expectedDims) expected *= d;
        if (t.elements() != expected || t.rowLength() != expectedDims[0]) {
            throw new GGUFFormatException("tensor '" + name + "' has shape " + java.util.Arrays.toString(t.dims())
                    + ", expected " + java.util.Arrays.toString(expectedDims));
        }
        return FloatTensor.of(t.type(), gguf.tensorData(t), t.elements());
    }

    public String name() {
        return name;
    }

    public LlamaConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public GGUFFile gguf() {
        return gguf;
    }

    /** A fresh sequence state with a KV cache for {@code contextLength} positions (capped at the model's). */
    public InferenceState newState(int contextLength) {
        int n = Math.min(contextLength, config.contextLength());
        if (n <= 0) {
            throw new IllegalArgumentException("context length must be positive");
        }
        return new InferenceState(config, n);
    }

    /** Runs {@code tokens} in order, appending them to the state's cache; returns the last position's logits. */
    public float[] ingest(InferenceState s, int[] tokens) {
        for (int t : tokens) {
            forward(s, t);
        }
        return s.logits;
    }

    /** Runs one token at the state's next position and returns the logits (a buffer reused by the next call). */
    public float[] forward(InferenceState s, int token) {
        LlamaConfig c = config;
        if (token < 0 || token >= c.vocabularySize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary [0, " + c.vocabularySize() + ")");
        }
        int pos = s.position;
        if (pos >= s.contextLength) {
            throw new IllegalStateException("context is full (" + s.contextLength + " positions)");
        }
        int dim = c.embeddingLength();
        int headDim = c.headDim();
        int kvDim = c.kvDim();
        int groups = c.headCount() / c.headCountKv();
        float attScale = (float) (1.0 / Math.sqrt(headDim));

        tokenEmbedding.copyTo((long) token * dim, s.x, 0, dim);

        for (int l = 0; l < c.blockCount(); l++) {
            ops.rmsnorm(s.xb, 0, s.x, 0, attnNorm[l], dim, c.rmsEps());
            float[] kc = s.keyCache[l];
            float[] vc = s.valueCache[l];
            int cacheOff = pos * kvDim;
            ops.matmul(wq[l], s.xb, 0, s.q, 0, c.headCount() * headDim, dim);
            ops.matmul(wk[l], s.xb, 0, kc, cacheOff, kvDim, dim);
            ops.matmul(wv[l], s.xb, 0, vc, cacheOff, kvDim, dim);
            for (int h = 0; h < c.headCount(); h++) {
                rope(s.q, h * headDim, pos);
            }
            for (int h = 0; h < c.headCountKv(); h++) {
                rope(kc, cacheOff + h * headDim, pos);
            }

            // attention, one query head at a time over the cached positions of its KV head
            for (int h = 0; h < c.headCount(); h++) {
                int qOff = h * headDim;
                int kvHeadOff = (h / groups) * headDim;
                int attOff = h * s.contextLength;
                for (int t = 0; t <= pos; t++) {
                    int kOff = t * kvDim + kvHeadOff;
                    float score = 0;
                    for (int i = 0; i < headDim; i++) {
                        score += s.q[qOff + i] * kc[kOff + i];
                    }
                    s.att[attOff + t] = score * attScale;
                }
                ops.softmax(s.att, attOff, pos + 1);
                java.util.Arrays.fill(s.xb, qOff, qOff + headDim, 0f);
                for (int t = 0; t <= pos; t++) {
                    float a = s.att[attOff + t];
                    int vOff = t * kvDim + kvHeadOff;
                    for (int i = 0; i < headDim; i++) {
                        s.xb[qOff + i] += a * vc[vOff + i];
                    }
                }
            }
            ops.matmul(wo[l], s.xb, 0, s.xb2, 0, dim, c.headCount() * headDim);
            for (int i = 0; i < dim; i++) {
                s.x[i] += s.xb2[i];
            }

            // SwiGLU feed-forward
            ops.rmsnorm(s.xb, 0, s.x, 0, ffnNorm[l], dim, c.rmsEps());
            int ff = c.feedForwardLength();
            ops.matmul(wGate[l], s.xb, 0, s.hb, 0, ff, dim);
            ops.matmul(wUp[l], s.xb, 0, s.hb2, 0, ff, dim);
            for (int i = 0; i < ff; i++) {
                float g = s.hb[i];
                s.hb[i] = g / (1f + (float) Math.exp(-g)) * s.hb2[i];
            }
            ops.matmul(wDown[l], s.hb, 0, s.xb2, 0, dim, ff);
            for (int i = 0; i < dim; i++) {
                s.x[i] += s.xb2[i];
            }
        }

        ops.rmsnorm(s.x, 0, s.x, 0, outputNorm, dim, c.rmsEps());
        ops.matmul(output, s.x, 0, s.logits, 0, c.vocabularySize(), dim);
        s.position = pos + 1;
        return s.logits;
    }

    /** Rotates adjacent pairs (ggml's "normal" rope, used by the llama architecture) of one head in place. */
    private void rope(float[] v, int off, int pos) {
        for (int i = 0; i < ropeInvFreq.length; i++) {
            double theta = pos * (double) ropeInvFreq[i];
            float cos = (float) Math.cos(theta);
            float sin = (float) Math.sin(theta);
            float a = v[off + 2 * i];
            float b = v[off + 2 * i + 1];
            v[off + 2 * i] = a * cos - b * sin;
            v[off + 2 * i + 1] = a * sin + b * cos;
        }
    }

    @Override
    public void close() {
        gguf.close();
    }
}
