package dev.enclave.runtime.tokenizer;

import dev.enclave.runtime.gguf.GGUFFile;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece (BPE by piece scores) as llama.cpp runs it for {@code tokenizer.ggml.model = llama}: spaces become
 * U+2581, a space is prefixed to text that starts a sequence or follows a special token, then adjacent symbols
 * (UTF-8 characters at first) are merged greedily by the score of the merged piece — highest score first, the
 * leftmost pair on ties — and any symbol left that is not a piece is spelled as byte tokens {@code <0xXX>}.
 */
public final class SentencePieceTokenizer extends VocabularyTokenizer {

    private static final String SPACE = "\u2581";

    private final float[] scores;
    private final Map<String, Integer> ids;
    private final int[] byteTokens = new int[256];
    private final int unk;
    private final boolean addBos, addEos, addSpacePrefix;
    private final SpecialTokenSplitter specials;

    SentencePieceTokenizer(String[] tokens, float[] scores, int[] types, int bos, int eos, int eot, int eom, int unk,
                           boolean addBos, boolean addEos, boolean addSpacePrefix) {
        super(tokens, types, bos, eos, eot, eom);
        this.scores = scores;
        this.unk = unk;
        this.addBos = addBos;
        this.addEos = addEos;
        this.addSpacePrefix = addSpacePrefix;
        this.ids = new HashMap<>(tokens.length * 2);
        for (int i = 0; i < tokens.length; i++) {
            ids.put(tokens[i], i); // later duplicates win, as in llama.cpp
        }
        Arrays.fill(byteTokens, unk);
        for (int b = 0; b < 256; b++) {
            Integer id = ids.get(String.format("<0x%02X>", b));
            if (id != null) {
                byteTokens[b] = id;
            }
        }
        this.specials = new SpecialTokenSplitter(tokens, types);
    }

    static SentencePieceTokenizer fromGGUF(GGUFFile g) {
        String[] tokens = g.getArray("tokenizer.ggml.tokens").asStrings();
        float[] scores = g.has("tokenizer.ggml.scores") ? g.getArray("tokenizer.ggml.scores").asFloats() : new float[tokens.length];
        int[] types;
        if (g.has("tokenizer.ggml.token_type")) {
            types = g.getArray("tokenizer.ggml.token_type").asInts();
        } else {
            types = new int[tokens.length];
            Arrays.fill(types, TokenType.NORMAL);
        }
        if (scores.length != tokens.length || types.length != tokens.length) {
            throw new dev.enclave.runtime.gguf.GGUFFormatException("tokenizer arrays differ in length: " + tokens.length
                    + " tokens, " + scores.length + " scores, " + types.length + " types");
        }
        return new SentencePieceTokenizer(tokens, scores, types,
                id(g, "tokenizer.ggml.bos_token_id", 1, tokens.length),
                id(g, "tokenizer.ggml.eos_token_id", 2, tokens.length),
                id(g, "tokenizer.ggml.eot_token_id", -1, tokens.length),
                id(g, "tokenizer.ggml.eom_token_id", -1, tokens.length),
                id(g, "tokenizer.ggml.unknown_token_id", 0, tokens.length),
                g.getBoolean("tokenizer.ggml.add_bos_token", true),
                g.getBoolean("tokenizer.ggml.add_eos_token", false),
                g.getBoolean("tokenizer.ggml.add_space_prefix", true));
    }

    /** A token id from metadata; absent, or out of range (e.g. 0xFFFFFFFF for "none"), gives {@code dflt} or -1. */
    static int id(GGUFFile g, String key, int dflt, int vocab) {
        long v = g.has(key) ? g.getLong(key) : dflt;
        return v >= 0 && v < vocab ? (int) v : -1;
    }

    @Override
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        IntList out = new IntList(text.length() + 2);
        if (addSpecial && addBos && bos >= 0) {
            out.add(bos);
        }
        boolean[] prevSpecial = {true};
        specials.split(text, parseSpecial, new SpecialTokenSplitter.Sink() {
            @Override
            public void text(String raw) {
                encodeRaw(raw, prevSpecial[0], out);
                prevSpecial[0] = false;
            }

            @Override
            public void token(int id) {
                out.add(id);
                prevSpecial[0] = true;
            }
        });
        if (addSpecial && addEos && eos >= 0) {
            out.add(eos);
        }
        return out.toArray();
    }

    private void encodeRaw(String fragment, boolean prefixSpace, IntList out) {
        String text = (addSpacePrefix && prefixSpace ? " " : "") + fragment;
        byte[] utf8 = text.replace(" ", SPACE).getBytes(StandardCharsets.UTF_8);
        int n = 0;
        // symbols: byte start and length, linked list of live symbols
        int[] symStart = new int[utf8.length];
        int[] symLen = new int[utf8.length];
        for (int off = 0; off < utf8.length; ) {
            int len = Math.min(utf8Length(utf8[off]), utf8.length - off);
            symStart[n] = off;
            symLen[n] = len;
            off += len;
            n++;
        }
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int s = 0; s < n; s++) {
            prev[s] = s - 1;
            next[s] = s + 1 < n ? s + 1 : -1;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>();
        for (int s = 1; s < n; s++) {
            tryAddBigram(utf8, symStart, symLen, s - 1, s, queue);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            if (symLen[b.left] == 0 || symLen[b.right] == 0 || symLen[b.left] + symLen[b.right] != b.size) {
                continue; // one side was merged into something else since this pair was queued
            }
            symLen[b.left] += symLen[b.right];
            symLen[b.right] = 0;
            next[b.left] = next[b.right];
            if (next[b.right] >= 0) {
                prev[next[b.right]] = b.left;
            }
            tryAddBigram(utf8, symStart, symLen, prev[b.left], b.left, queue);
            tryAddBigram(utf8, symStart, symLen, b.left, next[b.left], queue);
        }
        for (int s = n > 0 ? 0 : -1; s != -1; s = next[s]) {
            String piece = new String(utf8, symStart[s], symLen[s], StandardCharsets.UTF_8);
            Integer id = validPiece(utf8, symStart[s], symLen[s]) ? ids.get(piece) : null;
            if (id != null) {
                out.add(id);
            } else {
                for (int j = 0; j < symLen[s]; j++) {
                    out.add(byteTokens[utf8[symStart[s] + j] & 0xFF]);
                }
            }
        }
    }

    private void tryAddBigram(byte[] utf8, int[] symStart, int[] symLen, int left, int right, PriorityQueue<Bigram> queue) {
        if (left < 0 || right < 0) {
            return;
        }
        int size = symLen[left] + symLen[right];
        if (!validPiece(utf8, symStart[left], size)) {
            return;
        }
        Integer id = ids.get(new String(utf8, symStart[left], size, StandardCharsets.UTF_8));
        if (id == null) {
            return;
        }
        queue.add(new Bigram(left, right, scores[id], size));
    }

    /** A byte span is looked up as a piece only when it is well-formed UTF-8 (vocabulary pieces always are). */
    private static boolean validPiece(byte[] b, int off, int len) {
        int end = off + len;
        int i = off;
        while (i < end) {
            int c = b[i] & 0xFF;
            int n = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
            if (n == 0 || i + n > end) {
                return false;
            }
            for (int k = 1; k < n; k++) {
                if ((b[i + k] & 0xC0) != 0x80) {
                    return false;
                }
            }
            i += n;
        }
        return true;
    }

    /** Length of a UTF-8 sequence from its first byte, as llama.cpp's unicode_len_utf8 (stray bytes count 1). */
    static int utf8Length(byte first) {
        int hi = (first & 0xFF) >>> 4;
        return hi < 12 ? 1 : hi < 14 ? 2 : hi == 14 ? 3 : 4;
    }

    private record Bigram(int left, int right, float score, int size) implements Comparable<Bigram> {
        @Override
        public int compareTo(Bigram o) {
            int c = Float.compare(o.score, score); // higher score first
            return c != 0 ? c : Integer.compare(left, o.left); // then leftmost
        }
    }

    @Override
    protected byte[] render(int token) {
        return switch (types[token]) {
            case TokenType.BYTE -> {
                String t = tokens[token];
                if (t.length() == 6 && t.startsWith("<0x") && t.endsWith(">")
                        && Character.digit(t.charAt(3), 16) >= 0 && Character.digit(t.charAt(4), 16) >= 0) {
                    yield new byte[] {(byte) Integer.parseInt(t.substring(3, 5), 16)};
                }
                yield t.getBytes(StandardCharsets.UTF_8);
            }
            case TokenType.CONTROL, TokenType.UNKNOWN -> new byte[0];
            default -> tokens[token].replace(SPACE, " ").getBytes(StandardCharsets.UTF_8);
        };
    }


    /** A growable int array, to avoid boxing while encoding. */
    static final class IntList {
        private int[] a;
        private int n;

        IntList(int capacity) {
            a = new int[Math.max(4, capacity)];
        }

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, n * 2);
            }
            a[n++] = v;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
