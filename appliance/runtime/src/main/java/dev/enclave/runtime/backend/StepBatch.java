package dev.enclave.runtime.backend;

import dev.enclave.runtime.kv.BlockTable;

/**
 * What a backend is told about a step besides activations: for token t of the step, its id, its sequence, its
 * position and the KV slot it writes; for each sequence, its block table. Filled by the forward pass, reused every
 * step (no allocation while decoding).
 */
public final class StepBatch {

    public final int capacity;
    /** Tokens in this step. */
    public int tokens;
    /** Sequences in this step. */
    public int sequences;
    public final int[] token;
    public final int[] sequence;
    public final int[] pos;
    /** KV slot of the token's position: {@code block * blockSize + offset}. */
    public final int[] slot;
    /** Per sequence: its block table, and the step's row of its last token. */
    public final BlockTable[] tables;
    public final int[] lastRow;

    public StepBatch(int capacity, int maxSequences) {
        this.capacity = capacity;
        token = new int[capacity];
        sequence = new int[capacity];
        pos = new int[capacity];
        slot = new int[capacity];
        tables = new BlockTable[maxSequences];
        lastRow = new int[maxSequences];
    }
}
