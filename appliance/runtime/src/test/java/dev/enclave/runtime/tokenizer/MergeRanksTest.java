package dev.enclave.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The flat merge table answers as a map of id pairs would: random pairs, repeats (first rank wins), absent pairs. */
class MergeRanksTest {

    @Test
    void behavesLikeAMapOfPairs() {
        Random r = new Random(5);
        int n = 300_000;
        MergeRanks table = new MergeRanks(n);
        Map<Long, Integer> want = new HashMap<>();
        for (int rank = 0; rank < n; rank++) {
            int left = r.nextInt(128_256);
            int right = rank % 7 == 0 ? left : r.nextInt(128_256); // some pairs of a token with itself
            table.putIfAbsent(left, right, rank);
            want.putIfAbsent(((long) left << 32) | right, rank);
        }
        assertEquals(want.size(), table.size());
        for (Map.Entry<Long, Integer> e : want.entrySet()) {
            int left = (int) (e.getKey() >>> 32);
            int right = (int) (long) e.getKey();
            assertEquals(e.getValue(), table.rank(left, right));
        }
        for (int i = 0; i < 100_000; i++) {
            int left = r.nextInt(200_000);
            int right = r.nextInt(200_000);
            assertEquals(want.getOrDefault(((long) left << 32) | right, -1), table.rank(left, right));
        }
        // order matters: (a, b) and (b, a) are different merges
        MergeRanks small = new MergeRanks(2);
        small.putIfAbsent(1, 2, 0);
        assertEquals(-1, small.rank(2, 1));
        assertEquals(0, small.rank(1, 2));
    }
}
