package dev.enclave.runtime.kv;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Shared prompt prefixes (RadixAttention-style, at block granularity): a tree whose edges are full blocks of
 * token ids and whose nodes own the KV block computed for that block of tokens after that exact prefix. A new
 * sequence walks the tree with its prompt and starts from the deepest match, computing only the rest. The cache
 * holds one reference on each block it stores; blocks no sequence uses any more are evicted least recently used
 * first when the pool runs dry.
 *
 * <p>A finished conversation also leaves its last, partly filled block as a leaf that holds fewer tokens than a
 * block: the next turn of the conversation then reuses every computed position, not only whole blocks (a chat
 * client's follow-up would otherwise recompute up to a block of the previous answer). The sequence that adopts such
 * a block shares it, and copy-on-write gives it its own copy before it writes the block's free positions.
 */
public final class PrefixCache implements KvPool.Evictor {

    private record Key(int[] tokens, int hash) {
        static Key of(int[] prompt, int from, int length) {
            int[] t = Arrays.copyOfRange(prompt, from, from + length);
            return new Key(t, Arrays.hashCode(t));
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && k.hash == hash && Arrays.equals(k.tokens, tokens);
        }

        @Override
        public int hashCode() {
            return hash;
        }
    }

    /** The blocks of a cached prefix and how many of its tokens they hold (the last block may be partly filled). */
    public record Prefix(int[] blocks, int tokens) {
    }

    private static final class Node {
        final Node parent;
        final Key key; // a block's tokens; fewer than a block for a partial leaf
        final int block;
        final Map<Key, Node> children = new HashMap<>();
        long lastUsed;

        Node(Node parent, Key key, int block) {
            this.parent = parent;
            this.key = key;
            this.block = block;
        }
    }

    private final KvPool pool;
    private final Node root = new Node(null, null, -1);
    private long clock;
    private int cachedBlocks;
    private long lookups;
    private long hitTokens;
    private long lookedUpTokens;

    public PrefixCache(KvPool pool) {
        this.pool = pool;
        pool.setEvictor(this);
    }

    /**
     * The longest cached prefix of {@code prompt} of at most {@code maxTokens} tokens: whole blocks, then the longest
     * partial leaf that continues it. The caller takes its own references (see BlockTable#appendShared) before
     * anything else can evict them.
     */
    public synchronized Prefix longestPrefix(int[] prompt, int maxTokens) {
        int bs = pool.blockSize;
        lookups++;
        lookedUpTokens += prompt.length;
        List<Integer> found = new ArrayList<>();
        Node n = root;
        long now = ++clock;
        int i = 0;
        for (; (i + 1) * bs <= Math.min(maxTokens, prompt.length); i++) {
            Node next = n.children.get(Key.of(prompt, i * bs, bs));
            if (next == null) break;
            next.lastUsed = now;
            found.add(next.block);
            n = next;
        }
        int tokens = i * bs;
        Node partial = null;
        int room = Math.min(maxTokens, prompt.length) - tokens;
        for (Node c : n.children.values()) {
            int len = c.key.tokens.length;
            if (len >= bs || len > room || (partial != null && len <= partial.key.tokens.length)) continue;
            if (Arrays.equals(c.key.tokens, 0, len, prompt, tokens, tokens + len)) partial = c;
        }
        if (partial != null) {
            partial.lastUsed = now;
            found.add(partial.block);
            tokens += partial.key.tokens.length;
        }
        hitTokens += tokens;
        return new Prefix(found.stream().mapToInt(Integer::intValue).toArray(), tokens);
    }

    /**
     * Records the first {@code positions} positions of a sequence whose first positions hold {@code tokens}: the
     * whole blocks, and the partly filled last one as a leaf of its own.
     */
    public synchronized void insertWithTail(int[] tokens, int positions, BlockTable table) {
        int bs = pool.blockSize;
        positions = Math.min(positions, tokens.length);
        insert(tokens, positions / bs, table);
        int full = positions / bs, rest = positions % bs;
        if (rest == 0 || full >= table.blockCount()) return;
        Node n = root;
        for (int i = 0; i < full; i++) {
            n = n.children.get(Key.of(tokens, i * bs, bs));
            if (n == null) return; // an evicted or never-stored block on the way: nothing to hang the tail on
        }
        Key k = Key.of(tokens, full * bs, rest);
        Node leaf = n.children.get(k);
        if (leaf == null) {
            leaf = new Node(n, k, table.block(full));
            pool.retain(leaf.block);
            n.children.put(k, leaf);
            cachedBlocks++;
        }
        leaf.lastUsed = ++clock;
    }

    /** Records the first {@code fullBlocks} blocks of a sequence whose first positions hold {@code prompt}. */
    public synchronized void insert(int[] prompt, int fullBlocks, BlockTable table) {
        int bs = pool.blockSize;
        Node n = root;
        long now = ++clock;
        for (int i = 0; i < fullBlocks && (i + 1) * bs <= prompt.length && i < table.blockCount(); i++) {
            Key k = Key.of(prompt, i * bs, bs);
            Node next = n.children.get(k);
            if (next == null) {
                next = new Node(n, k, table.block(i));
                pool.retain(next.block); // the cache's own reference
                n.children.put(k, next);
                cachedBlocks++;
            }
            next.lastUsed = now;
            n = next;
        }
    }

    /** Frees up to {@code wanted} blocks that only the cache still holds, least recently used leaves first. */
    @Override
    public synchronized boolean evict(int wanted) {
        int freed = 0;
        while (freed < wanted) {
            List<Node> leaves = new ArrayList<>();
            collectEvictable(root, leaves);
            if (leaves.isEmpty()) break;
            leaves.sort((a, b) -> Long.compare(a.lastUsed, b.lastUsed));
            for (Node leaf : leaves) {
                if (freed >= wanted) break;
                leaf.parent.children.remove(leaf.key);
                pool.release(leaf.block);
                cachedBlocks--;
                freed++;
            }
        }
        return freed > 0;
    }

    private void collectEvictable(Node n, List<Node> out) {
        for (Node c : n.children.values()) {
            if (c.children.isEmpty()) {
                if (pool.refCount(c.block) == 1) out.add(c);
            } else {
                collectEvictable(c, out);
            }
        }
    }

    public synchronized int cachedBlocks() {
        return cachedBlocks;
    }

    /** Share of looked-up prompt tokens that were found in the cache. */
    public synchronized double hitRate() {
        return lookedUpTokens == 0 ? 0 : (double) hitTokens / lookedUpTokens;
    }

    public synchronized long lookups() {
        return lookups;
    }
}
