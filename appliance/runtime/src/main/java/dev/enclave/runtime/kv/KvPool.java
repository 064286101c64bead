package dev.enclave.runtime.kv;

import java.util.Arrays;

/**
 * The paged KV cache: one preallocated pool of fixed-size blocks (each holds the keys and values of
 * {@link #blockSize} positions in every layer), shared by all sequences. A sequence maps its positions to blocks
 * through its own block table; blocks are reference-counted so that a prefix computed once can be read by many
 * sequences. Keys of block {@code b}, position slot {@code s}, layer {@code l} start at
 * {@code keys[l][(b * blockSize + s) * kvDim]}.
 */
public final class KvPool {

    public final int blockSize;
    public final int blockShift;
    public final int blocks;
    public final int kvDim;
    public final float[][] keys;
    public final float[][] values;
    private final int[] refs;
    private final int[] freeList;
    private int freeCount;
    /** Called when the pool runs dry, to give back blocks held only by a cache; returns true if it freed some. */
    private volatile Evictor evictor;

    @FunctionalInterface
    public interface Evictor {
        boolean evict(int wanted);
    }

    public KvPool(int layers, int kvDim, int blockSize, int blocks) {
        if (Integer.bitCount(blockSize) != 1) throw new IllegalArgumentException("block size must be a power of two");
        long floats = (long) blocks * blockSize * kvDim;
        if (floats > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("KV pool of " + blocks + " blocks is too large for one array per layer");
        }
        this.blockSize = blockSize;
        this.blockShift = Integer.numberOfTrailingZeros(blockSize);
        this.blocks = blocks;
        this.kvDim = kvDim;
        this.keys = new float[layers][(int) floats];
        this.values = new float[layers][(int) floats];
        this.refs = new int[blocks];
        this.freeList = new int[blocks];
        for (int i = 0; i < blocks; i++) freeList[i] = blocks - 1 - i;
        this.freeCount = blocks;
    }

    /** A pool sized to a memory budget in bytes (keys and values, all layers). */
    public static KvPool forBudget(int layers, int kvDim, int blockSize, long bytes) {
        return new KvPool(layers, kvDim, blockSize, blocksForBudget(layers, kvDim, blockSize, bytes));
    }

    /** The bytes {@link #forBudget} allocates for the keys and values. */
    public static long bytesForBudget(int layers, int kvDim, int blockSize, long bytes) {
        return (long) blocksForBudget(layers, kvDim, blockSize, bytes) * 2L * layers * blockSize * kvDim * Float.BYTES;
    }

    private static int blocksForBudget(int layers, int kvDim, int blockSize, long bytes) {
        long perBlock = 2L * layers * blockSize * kvDim * Float.BYTES;
        int n = (int) Math.max(1, Math.min(Integer.MAX_VALUE, bytes / perBlock));
        return (int) Math.min(n, (Integer.MAX_VALUE - 16L) / ((long) blockSize * kvDim));
    }

    public void setEvictor(Evictor evictor) {
        this.evictor = evictor;
    }

    /** A fresh block with one reference, or -1 when none is free even after asking the evictor. */
    public int allocate() {
        int b = take();
        if (b >= 0) return b;
        Evictor e = evictor;
        if (e != null && e.evict(Math.max(1, blocks / 16))) { // called without holding this pool's lock
            b = take();
        }
        return b;
    }

    private synchronized int take() {
        if (freeCount == 0) return -1;
        int b = freeList[--freeCount];
        refs[b] = 1;
        return b;
    }

    public synchronized void retain(int block) {
        if (refs[block] <= 0) throw new IllegalStateException("retain of free block " + block);
        refs[block]++;
    }

    public synchronized void release(int block) {
        if (refs[block] <= 0) throw new IllegalStateException("release of free block " + block);
        if (--refs[block] == 0) freeList[freeCount++] = block;
    }

    public synchronized int refCount(int block) {
        return refs[block];
    }

    public synchronized int freeBlocks() {
        return freeCount;
    }

    public int usedBlocks() {
        return blocks - freeBlocks();
    }

    /** Copies every layer's keys and values of block {@code from} into block {@code to} (copy-on-write). */
    public void copyBlock(int from, int to) {
        int span = blockSize * kvDim;
        int a = offset(from, 0), b = offset(to, 0);
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(keys[l], a, keys[l], b, span);
            System.arraycopy(values[l], a, values[l], b, span);
        }
    }

    /** Float offset of position slot {@code slot} of {@code block} in a layer's key or value array. */
    public int offset(int block, int slot) {
        return ((block << blockShift) + slot) * kvDim;
    }

    @Override
    public String toString() {
        return "KvPool[" + blocks + " blocks of " + blockSize + ", free " + freeBlocks() + ", refs " + Arrays.stream(refs).sum() + "]";
    }
}
