package dev.enclave.runtime.kv;

import dev.enclave.runtime.backend.HostKvStorage;
import dev.enclave.runtime.backend.KvStorage;
import java.util.Arrays;
import java.util.List;

/**
 * The paged KV cache: one preallocated pool of fixed-size blocks (each holds the keys and values of
 * {@link #blockSize} positions in every layer), shared by all sequences. A sequence maps its positions to blocks
 * through its own block table; blocks are reference-counted so that a prefix computed once can be read by many
 * sequences. The keys and values themselves live in each layer's {@link KvStorage}, in the memory of the backend
 * that runs the layer; slot {@code b * blockSize + s} holds position s of block b. This class only names blocks.
 */
public final class KvPool {

    public final int blockSize;
    public final int blockShift;
    public final int blocks;
    public final int kvDim;
    private final KvStorage[] layers;
    private final int[] refs;
    private final int[] freeList;
    private int freeCount;
    /** Called when the pool runs dry, to give back blocks held only by a cache; returns true if it freed some. */
    private volatile Evictor evictor;

    @FunctionalInterface
    public interface Evictor {
        boolean evict(int wanted);
    }

    /** A pool whose layers live in the heap (float32). */
    public KvPool(int layers, int kvDim, int blockSize, int blocks) {
        this(hostLayers(layers, kvDim, blockSize, blocks), kvDim, blockSize, blocks);
    }

    /** A pool over layers' storage that backends allocated, each {@code blocks * blockSize} slots. */
    public KvPool(List<KvStorage> layers, int kvDim, int blockSize, int blocks) {
        if (Integer.bitCount(blockSize) != 1) throw new IllegalArgumentException("block size must be a power of two");
        for (KvStorage l : layers) {
            if (l.kvDim() != kvDim || l.positions() != blocks * blockSize) throw new IllegalArgumentException("a layer's KV storage does not fit the pool");
        }
        this.blockSize = blockSize;
        this.blockShift = Integer.numberOfTrailingZeros(blockSize);
        this.blocks = blocks;
        this.kvDim = kvDim;
        this.layers = layers.toArray(KvStorage[]::new);
        this.refs = new int[blocks];
        this.freeList = new int[blocks];
        for (int i = 0; i < blocks; i++) freeList[i] = blocks - 1 - i;
        this.freeCount = blocks;
    }

    private static List<KvStorage> hostLayers(int layers, int kvDim, int blockSize, int blocks) {
        checkSize(kvDim, blockSize, blocks);
        KvStorage[] l = new KvStorage[layers];
        for (int i = 0; i < layers; i++) l[i] = new HostKvStorage(kvDim, blocks * blockSize);
        return List.of(l);
    }

    /** Refuses a pool whose layers would not fit one array each. */
    public static void checkSize(int kvDim, int blockSize, int blocks) {
        if ((long) blocks * blockSize * kvDim > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("KV pool of " + blocks + " blocks is too large for one array per layer");
        }
    }

    /** Layer {@code l}'s keys and values. */
    public KvStorage layer(int l) {
        return layers[l];
    }

    public int layerCount() {
        return layers.length;
    }

    /** Slots per layer: {@code blocks * blockSize}. */
    public int positions() {
        return blocks * blockSize;
    }

    /** A pool sized to a memory budget in bytes (keys and values, all layers). */
    public static KvPool forBudget(int layers, int kvDim, int blockSize, long bytes) {
        return new KvPool(layers, kvDim, blockSize, blocksForBudget(layers, kvDim, blockSize, bytes));
    }

    /** The bytes {@link #forBudget} allocates for the keys and values. */
    public static long bytesForBudget(int layers, int kvDim, int blockSize, long bytes) {
        return (long) blocksForBudget(layers, kvDim, blockSize, bytes) * 2L * layers * blockSize * kvDim * Float.BYTES;
    }

    public static int blocksForBudget(int layers, int kvDim, int blockSize, long bytes) {
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
        for (KvStorage l : layers) l.copySlots(from << blockShift, to << blockShift, blockSize);
    }

    /** Float offset of position slot {@code slot} of {@code block} in a layer's key or value array. */
    public int offset(int block, int slot) {
        return ((block << blockShift) + slot) * kvDim;
    }

    /** The storage slot of position slot {@code slot} of {@code block}. */
    public int slot(int block, int slot) {
        return (block << blockShift) + slot;
    }

    @Override
    public String toString() {
        return "KvPool[" + blocks + " blocks of " + blockSize + ", free " + freeBlocks() + ", refs " + Arrays.stream(refs).sum() + "]";
    }
}
