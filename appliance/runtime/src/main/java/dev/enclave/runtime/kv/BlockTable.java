package dev.enclave.runtime.kv;

import java.util.Arrays;

/** One sequence's map from positions to KV blocks: position p lives in block {@code blocks[p >> shift]}. */
public final class BlockTable {

    private final KvPool pool;
    private int[] blocks = new int[8];
    private int count;
    /** Per layer storage, the recent window's full-precision rows (a KV type with a window), made on first write. */
    private volatile java.util.IdentityHashMap<Object, RecentRows> recent;

    public BlockTable(KvPool pool) {
        this.pool = pool;
    }

    public KvPool pool() {
        return pool;
    }

    /**
     * This sequence's recent rows for one layer's storage, made on first use (by the KV write, one thread per step);
     * null from {@link #recentIfAny} until then.
     */
    public RecentRows recent(Object storage, int window, int kvDim) {
        java.util.IdentityHashMap<Object, RecentRows> m = recent;
        if (m == null) recent = m = new java.util.IdentityHashMap<>();
        RecentRows r = m.get(storage);
        if (r == null) {
            java.util.IdentityHashMap<Object, RecentRows> copy = new java.util.IdentityHashMap<>(m);
            copy.put(storage, r = new RecentRows(window, kvDim));
            recent = copy; // replaced whole: readers on other threads see a complete map
        }
        return r;
    }

    /** The recent rows kept for {@code storage}, or null. */
    public RecentRows recentIfAny(Object storage) {
        java.util.IdentityHashMap<Object, RecentRows> m = recent;
        return m == null ? null : m.get(storage);
    }

    /** Forgets the recent rows of every layer (a context shift moves the positions). */
    public void clearRecent() {
        java.util.IdentityHashMap<Object, RecentRows> m = recent;
        if (m != null) for (RecentRows r : m.values()) r.clear();
    }

    public int blockCount() {
        return count;
    }

    public int block(int i) {
        return blocks[i];
    }

    /** Positions the table can hold without allocating. */
    public int capacity() {
        return count * pool.blockSize;
    }

    /** Makes room for {@code positions} positions; false (nothing changed) when the pool has no blocks left. */
    public boolean ensure(int positions) {
        int need = (positions + pool.blockSize - 1) >> pool.blockShift;
        int start = count;
        while (count < need) {
            int b = pool.allocate();
            if (b < 0) {
                while (count > start) pool.release(blocks[--count]);
                return false;
            }
            push(b);
        }
        return true;
    }

    /** Shares every block of {@code parent} (a fork: n > 1, parallel sampling); writes later copy what they touch. */
    public void forkFrom(BlockTable parent) {
        if (count != 0) throw new IllegalStateException("a fork starts empty");
        for (int i = 0; i < parent.count; i++) appendShared(parent.blocks[i]);
        java.util.IdentityHashMap<Object, RecentRows> r = parent.recent;
        if (r != null) {
            // the parent's recent window too: a fork reads what its parent would
            java.util.IdentityHashMap<Object, RecentRows> copy = new java.util.IdentityHashMap<>();
            r.forEach((storage, rows) -> copy.put(storage, rows.copy()));
            recent = copy;
        }
    }

    /**
     * Copy-on-write: before positions [from, to) are written, every block they fall in that another sequence also
     * references is replaced by a private copy. False (nothing lost, the table stays valid) when the pool is full.
     */
    public boolean makeWritable(int from, int to) {
        if (to <= from) return true;
        int first = from >> pool.blockShift, last = Math.min(count, ((to - 1) >> pool.blockShift) + 1);
        for (int i = first; i < last; i++) {
            int b = blocks[i];
            if (pool.refCount(b) == 1) continue;
            int copy = pool.allocate();
            if (copy < 0) return false;
            pool.copyBlock(b, copy);
            pool.release(b);
            blocks[i] = copy;
        }
        return true;
    }

    /** Appends an existing block (e.g. a cached prefix), taking a reference. */
    public void appendShared(int block) {
        pool.retain(block);
        push(block);
    }

    private void push(int b) {
        if (count == blocks.length) blocks = Arrays.copyOf(blocks, count * 2);
        blocks[count++] = b;
    }

    /**
     * Releases {@code n} blocks from block index {@code first} and moves the later blocks down (a context shift: the
     * positions they hold then come {@code n} blocks earlier).
     */
    public void dropBlocks(int first, int n) {
        if (first < 0 || n < 0 || first + n > count) throw new IllegalArgumentException("blocks [" + first + ", +" + n + ") of " + count);
        for (int i = first; i < first + n; i++) pool.release(blocks[i]);
        System.arraycopy(blocks, first + n, blocks, first, count - first - n);
        count -= n;
    }

    /** Keeps the blocks that hold positions [0, positions) and releases the rest. */
    public void truncate(int positions) {
        int keep = (positions + pool.blockSize - 1) >> pool.blockShift;
        while (count > keep) pool.release(blocks[--count]);
    }

    public void releaseAll() {
        truncate(0);
    }

    /** The storage slot of position {@code pos} ({@code block * blockSize + offset in the block}). */
    public int slot(int pos) {
        return (blocks[pos >> pool.blockShift] << pool.blockShift) + (pos & (pool.blockSize - 1));
    }

    /** Float offset of position {@code pos} in a layer's key/value array. */
    public int offset(int pos) {
        return pool.offset(blocks[pos >> pool.blockShift], pos & (pool.blockSize - 1));
    }
}
