package dev.enclave.runtime.model;

import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.kv.KvPool;

/**
 * One sequence: its place in the paged KV cache (a block table over a pool, shared between sequences or private),
 * how many positions it holds, and what the last step left for it on the host: the logits of its last position and
 * (for embeddings) its final-normed hidden state. Activations belong to the step ({@link Workspace}), not to a sequence.
 */
public final class InferenceState {

    final int contextLength;
    final float[] x;       // final-normed hidden state of the last position, when keepHidden
    boolean keepHidden;    // embeddings read it; generation needs only the logits
    final KvPool pool;     // where the keys and values live (shared between sequences, or private)
    final BlockTable table; // this sequence's positions -> pool blocks
    final float[] logits;
    int position;          // number of positions already in the cache
    final ModelConfig config;
    /** For this sequence's own steps ({@link TransformerModel#forward(InferenceState, int)}), made on first use. */
    Workspace workspace;

    /** A sequence whose KV cache comes from {@code pool} (shared in continuous batching, or its own). */
    InferenceState(ModelConfig c, int contextLength, KvPool pool) {
        this.contextLength = contextLength;
        this.config = c;
        this.pool = pool;
        this.table = new BlockTable(pool);
        x = new float[c.embeddingLength()];
        logits = new float[c.vocabularySize()];
    }

    static final int PRIVATE_BLOCK = 16;

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

    /** After {@link TransformerModel#shiftContext}'s key rotation: the table without the dropped blocks, fewer positions. */
    void dropPositions(int keep, int discard) {
        table.dropBlocks(keep / pool.blockSize, discard / pool.blockSize);
        position -= discard;
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
