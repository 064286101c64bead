package dev.enclave.runtime.model;

import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.kv.KvPool;

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
    final KvPool pool;     // where the keys and values live (shared between sequences, or private)
    final BlockTable table; // this sequence's positions -> pool blocks
    final float[] logits;
    int position;          // number of positions already in the cache
    final ModelConfig config;
    Batch batch;           // prompt-processing buffers, made on first use

    /** Activations of a batch of tokens, row-major: token t's vector starts at t * width. */
    static final class Batch {
        final int capacity;
        final float[] x, xb, xb2, q, qkv, hb, hb2, k, v;
        final int[] token, owner, pos;
        float[] logits; // several sequences' logits, when a step batches the output projection

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
            k = new float[capacity * c.kvDim()];
            v = new float[capacity * c.kvDim()];
            token = new int[capacity];
            owner = new int[capacity];
            pos = new int[capacity];
        }
    }

    Batch batch(int tokens) {
        if (batch == null || batch.capacity < tokens) batch = new Batch(config, tokens);
        return batch;
    }

    /** A sequence with its own KV pool, sized for {@code contextLength} positions. */
    InferenceState(ModelConfig c, int contextLength) {
        this(c, contextLength, privatePool(c, contextLength));
    }

    /** A sequence whose KV cache comes from a shared pool (continuous batching). */
    InferenceState(ModelConfig c, int contextLength, KvPool pool) {
        this.contextLength = contextLength;
        this.config = c;
        this.pool = pool;
        this.table = new BlockTable(pool);
        x = new float[c.embeddingLength()];
        xb = new float[Math.max(c.embeddingLength(), c.qDim())];
        xb2 = new float[c.embeddingLength()];
        hb = new float[2 * c.feedForwardLength()];
        hb2 = new float[c.feedForwardLength()];
        q = new float[c.qDim()];
        qkv = new float[c.qDim() + 2 * c.kvDim()];
        att = new float[c.headCount() * contextLength];
        logits = new float[c.vocabularySize()];
    }

    static final int PRIVATE_BLOCK = 16;

    private static KvPool privatePool(ModelConfig c, int contextLength) {
        int blocks = (contextLength + PRIVATE_BLOCK - 1) / PRIVATE_BLOCK;
        long floats = (long) blocks * PRIVATE_BLOCK * c.kvDim();
        long bytes = 2L * c.blockCount() * floats * Float.BYTES;
        if (floats > Integer.MAX_VALUE - 16 || bytes > Runtime.getRuntime().maxMemory() / 10 * 8) {
            throw new IllegalStateException("a KV cache for " + contextLength + " positions needs " + (bytes >> 20)
                    + " MiB, more than this JVM can hold (max heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB); ask for a shorter context");
        }
        return new KvPool(c.blockCount(), c.kvDim(), PRIVATE_BLOCK, blocks);
    }

    public BlockTable blockTable() {
        return table;
    }

    /** Gives the sequence's KV blocks back to the pool. */
    public void release() {
        table.releaseAll();
        position = 0;
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
        table.truncate(pos);
    }

    /**
     * Makes {@code child} (fresh, same pool) continue from exactly where this sequence is: same positions (its
     * KV blocks shared, copied on first write) and the same last logits.
     */
    public void forkInto(InferenceState child) {
        if (child.pool != pool) throw new IllegalArgumentException("a fork shares its parent's KV pool");
        if (child.position != 0) throw new IllegalStateException("a fork starts empty");
        child.table.forkFrom(table);
        child.position = position;
        System.arraycopy(logits, 0, child.logits, 0, logits.length);
    }

    /** Starts the sequence from KV blocks already computed for its first {@code positions} tokens. */
    public void adoptPrefix(int[] blocks, int positions) {
        if (position != 0 || table.blockCount() != 0) throw new IllegalStateException("prefix must come first");
        for (int b : blocks) table.appendShared(b);
        position = positions;
    }
}
