package dev.enclave.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The vocabulary table answers as a map from token string to id would: whole strings and ranges of longer strings,
 * repeated tokens (the last id wins, as with {@code put}), absent strings, strings with equal hash codes.
 */
class TokenIdsTest {

    @Test
    void behavesLikeAMapOfTokens() {
        SplittableRandom r = new SplittableRandom(11);
        String[] tokens = new String[50_000];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = i % 97 == 0 && i > 0 ? tokens[r.nextInt(i)] : randomToken(r); // some repeats
        }
        tokens[1] = "Aa"; // "Aa" and "BB" share a hash code
        tokens[2] = "BB";
        TokenIds ids = new TokenIds(tokens);
        Map<String, Integer> want = new HashMap<>();
        for (int i = 0; i < tokens.length; i++) want.put(tokens[i], i);
        for (Map.Entry<String, Integer> e : want.entrySet()) {
            assertEquals(e.getValue(), ids.get(e.getKey()), e.getKey());
            String padded = "xy" + e.getKey() + "z";
            assertEquals(e.getValue(), ids.get(padded, 2, 2 + e.getKey().length()), padded);
        }
        for (int i = 0; i < 20_000; i++) {
            String s = randomToken(r) + randomToken(r);
            int from = r.nextInt(s.length());
            int to = from + r.nextInt(s.length() - from + 1);
            String sub = s.substring(from, to);
            assertEquals(want.getOrDefault(sub, -1), ids.get(s, from, to), sub);
            assertEquals(want.getOrDefault(s, -1), ids.get(s), s);
        }
        assertEquals(-1, new TokenIds(new String[0]).get("a"));
    }

    private static String randomToken(SplittableRandom r) {
        StringBuilder b = new StringBuilder();
        int n = 1 + r.nextInt(6);
        for (int k = 0; k < n; k++) b.append((char) ('a' + r.nextInt(r.nextBoolean() ? 3 : 26)));
        if (r.nextInt(10) == 0) b.append('\u0120'); // a GPT-2 mapped space
        return b.toString();
    }
}
