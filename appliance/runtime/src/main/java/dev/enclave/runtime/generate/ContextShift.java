package dev.enclave.runtime.generate;

import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;

/**
 * What a sequence does when it reaches the end of its context: stop (no shift), or drop older positions and go on.
 * A shift keeps the first {@code keep} tokens (the attention sinks: StreamingLLM found that attention leans on the
 * first few tokens whatever they say, and a window without them falls apart) and drops half of the rest, whole KV
 * blocks at a time: the older half (StreamingLLM's recent window), or with {@code heavyHitters} the blocks that
 * received the least attention per query among all but the most recent quarter (H2O's heavy hitters kept beside a
 * recent window; blocks shared with another sequence or the prefix cache are never dropped). As llama.cpp's context
 * shift: the sequence then reads a shortened text, so its answers are no longer those of an unbounded context.
 */
public record ContextShift(int keep, boolean heavyHitters) {

    public ContextShift {
        if (keep < 0) throw new IllegalArgumentException("tokens kept at a context shift must not be negative: " + keep);
    }

    /** Sinks and the recent window. */
    public ContextShift(int keep) {
        this(keep, false);
    }

    /** The attention sinks StreamingLLM keeps. */
    public static final ContextShift SINKS = new ContextShift(4);

    /** Positions kept at the start: {@code keep} rounded up to whole blocks. */
    public int kept(int blockSize) {
        return (keep + blockSize - 1) / blockSize * blockSize;
    }

    /** Positions to drop after the kept ones from a full context of {@code position}: the older half, whole blocks (0: none can go). */
    public int dropped(int position, int blockSize) {
        int rest = position - kept(blockSize);
        return Math.max(0, rest / 2 / blockSize * blockSize);
    }

    /**
     * Gets {@code model} ready for this shift on {@code pool}: heavy hitters need the attention each slot receives.
     * False when they are asked for and a backend cannot count it (shifts then drop the older half).
     */
    public boolean prepare(TransformerModel model, dev.enclave.runtime.kv.KvPool pool) {
        return !heavyHitters || model.trackAttention(pool);
    }

    /** Shifts {@code state}'s full context (true), or leaves it as it is when nothing can go or the pool is full. */
    public boolean apply(TransformerModel model, InferenceState state) {
        int bs = state.blockTable().pool().blockSize;
        int drop = dropped(state.position(), bs);
        if (drop == 0) return false;
        if (heavyHitters) {
            int recent = (state.position() - kept(bs)) / 4;
            int[] blocks = model.heavyHitterBlocks(state, kept(bs), recent, drop / bs);
            if (blocks != null) return model.dropBlocks(state, blocks);
        }
        return model.shiftContext(state, kept(bs), drop);
    }
}
