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

    private static final class Node {
        final Node parent;
        final Key key;
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
     * The blocks holding the longest cached prefix of {@code prompt}, at most {@code maxBlocks} of them. The caller
     * takes its own references (see BlockTable#appendShared) before anything else can evict them.
     */
    public synchronized int[] match(int[] prompt, int maxBlocks) {
        int bs = pool.blockSize;
        lookups++;
        lookedUpTokens += prompt.length;
        List<Integer> found = new ArrayList<>();
        Node n = root;
        long now = ++clock;
        for (int i = 0; i < maxBlocks && (i + 1) * bs <= prompt.length; i++) {
            Node next = n.children.get(Key.of(prompt, i * bs, bs));
            if (next == null) break;
            next.lastUsed = now;
            found.add(next.block);
            n = next;
        }
        hitTokens += (long) found.size() * bs;
        return found.stream().mapToInt(Integer::intValue).toArray();
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
