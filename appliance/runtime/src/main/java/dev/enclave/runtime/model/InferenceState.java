package dev.enclave.runtime.model;

/**
 * Everything one sequence needs while it runs: activation buffers, allocated once, and its KV cache
 * (float32, one contiguous array per layer, position-major). Nothing is allocated per token.
 */
public final class InferenceState {

    final int contextLength;
    final float[] x;       // residual stream
    final float[] xb;      // normalized input / attention output
    final float[] xb2;     // projection output
    final float[] hb;      // ffn gate (or fused gate+up)
    final float[] hb2;     // ffn up
    final float[] q;
    final float[] qkv;     // fused projection output (phi3)
    final float[] att;     // attention scores, one row per head
    final float[][] keyCache;
    final float[][] valueCache;
    final float[] logits;
    int position;          // number of positions already in the cache
    final ModelConfig config;
    Batch batch;           // prompt-processing buffers, made on first use

    /** Activations of a batch of tokens, row-major: token t's vector starts at t * width. */
    static final class Batch {
        final int capacity;
        final float[] x, xb, xb2, q, qkv, hb, hb2;

        Batch(ModelConfig c, int capacity) {
            this.capacity = capacity;
            int dim = c.embeddingLength();
            x = new float[capacity * dim];
            xb = new float[capacity * Math.max(dim, c.qDim())];
            xb2 = new float[capacity * dim];
            q = new float[capacity * c.qDim()];
            qkv = new float[capacity * (c.qDim() + 2 * c.kvDim())];
            hb = new float[capacity * 2 * c.feedForwardLength()];
            hb2 = new float[capacity * c.feedForwardLength()];
        }
    }

    Batch batch(int tokens) {
        if (batch == null || batch.capacity < tokens) batch = new Batch(config, tokens);
        return batch;
    }

    InferenceState(ModelConfig c, int contextLength) {
        this.contextLength = contextLength;
        this.config = c;
        long cacheFloats = (long) contextLength * c.kvDim();
        long bytes = 2L * c.blockCount() * cacheFloats * Float.BYTES;
        if (cacheFloats > Integer.MAX_VALUE - 16 || bytes > Runtime.getRuntime().maxMemory() / 10 * 8) {
            throw new IllegalStateException("a KV cache for " + contextLength + " positions needs " + (bytes >> 20)
                    + " MiB, more than this JVM can hold (max heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB); ask for a shorter context");
        }
        x = new float[c.embeddingLength()];
        xb = new float[Math.max(c.embeddingLength(), c.qDim())];
        xb2 = new float[c.embeddingLength()];
        hb = new float[2 * c.feedForwardLength()];
        hb2 = new float[c.feedForwardLength()];
        q = new float[c.qDim()];
        qkv = new float[c.qDim() + 2 * c.kvDim()];
        att = new float[c.headCount() * contextLength];
        keyCache = new float[c.blockCount()][contextLength * c.kvDim()];
        valueCache = new float[c.blockCount()][contextLength * c.kvDim()];
        logits = new float[c.vocabularySize()];
    }

    public int contextLength() {
        return contextLength;
    }

    /** Positions already computed (the next token goes at this position). */
    public int position() {
        return position;
    }

    /** Logits of the last position computed. The array is reused by the next step. */
    public float[] logits() {
        return logits;
    }

    /** Forgets positions at and after {@code pos}, e.g. to reuse a shared prompt prefix. */
    public void truncate(int pos) {
        if (pos < 0 || pos > position) {
            throw new IllegalArgumentException("cannot truncate to " + pos + " with " + position + " positions");
        }
        position = pos;
    }
}
