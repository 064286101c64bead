package dev.enclave.runtime.tokenizer;

import dev.enclave.runtime.ModelFormatException;
import dev.enclave.runtime.gguf.GGUFArray;
import dev.enclave.runtime.gguf.GGUFFile;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-level BPE ({@code tokenizer.ggml.model = gpt2}) as llama.cpp runs it: special tokens are cut out first,
 * the text is split by the pre-tokenizer regexes named in {@code tokenizer.ggml.pre}, each piece's UTF-8 bytes are
 * mapped to printable characters (GPT-2's byte-to-unicode table), and adjacent symbols are merged by merge rank,
 * lowest rank first, leftmost on ties.
 */
public final class BytePairTokenizer extends VocabularyTokenizer {

    /** Pre-tokenizer regexes by {@code tokenizer.ggml.pre}, applied one after another (each splits the pieces further). */
    static final Map<String, List<String>> PRE_TOKENIZERS;
    /** Pre-tokenizers that emit a whole piece as one token when the vocabulary has it, before merging. */
    private static final List<String> IGNORE_MERGES = List.of("llama-bpe", "llama3", "llama-v3");

    static {
        String llama3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        String qwen2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        String gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
        PRE_TOKENIZERS = Map.of(
                "llama-bpe", List.of(llama3), "llama3", List.of(llama3), "llama-v3", List.of(llama3),
                "qwen2", List.of(qwen2), "deepseek-r1-qwen", List.of(qwen2),
                "gpt2", List.of(gpt2),
                "smollm", List.of("\\p{N}", gpt2),
                "default", List.of("[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2, "\\p{N}+", "[0-9][0-9][0-9]"));
    }

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        // GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 and up.
        Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private final TokenIds ids;
    private final MergeRanks mergeRanks;
    private final List<Pattern> pre;
    private final boolean ignoreMerges;
    private final SpecialTokenSplitter specials;
    private final boolean addBos, addEos;

    BytePairTokenizer(String[] tokens, int[] types, String[] merges, String preName, int bos, int eos, int eot, int eom,
                      boolean addBos, boolean addEos) {
        this(tokens, types, new TokenIds(tokens), ids -> MergeRanks.resolve(merges, ids), preName, bos, eos, eot, eom, addBos, addEos);
    }

    private BytePairTokenizer(String[] tokens, int[] types, TokenIds ids, java.util.function.Function<TokenIds, MergeRanks> merges,
                              String preName, int bos, int eos, int eot, int eom, boolean addBos, boolean addEos) {
        super(tokens, types, bos, eos, eot, eom);
        this.addBos = addBos;
        this.addEos = addEos;
        List<String> exprs = PRE_TOKENIZERS.get(preName);
        if (exprs == null) {
            throw new ModelFormatException("BPE pre-tokenizer '" + preName + "' is not supported (supported: "
                    + String.join(", ", new java.util.TreeSet<>(PRE_TOKENIZERS.keySet())) + ")");
        }
        this.pre = exprs.stream().map(e -> Pattern.compile(e, Pattern.UNICODE_CHARACTER_CLASS)).toList();
        this.ignoreMerges = IGNORE_MERGES.contains(preName);
        this.ids = ids;
        this.mergeRanks = merges.apply(ids);
        this.specials = new SpecialTokenSplitter(tokens, types);
    }

    static BytePairTokenizer fromGGUF(GGUFFile g) {
        return fromGGUF(g, null);
    }

    /** The tokenizer of {@code g}, its merge table from {@code cache} when that holds it (null: no cache). */
    static BytePairTokenizer fromGGUF(GGUFFile g, MergeTableCache cache) {
        String[] tokens = g.getArray("tokenizer.ggml.tokens").asStrings();
        if (!g.has("tokenizer.ggml.merges")) {
            throw new ModelFormatException("BPE vocabulary has no merges (tokenizer.ggml.merges is missing)");
        }
        GGUFArray merges = g.getArray("tokenizer.ggml.merges");
        int[] types;
        if (g.has("tokenizer.ggml.token_type")) {
            types = g.getArray("tokenizer.ggml.token_type").asInts();
            if (types.length != tokens.length) {
                throw new ModelFormatException("tokenizer arrays differ in length: " + tokens.length + " tokens, " + types.length + " types");
            }
        } else {
            types = new int[tokens.length];
            Arrays.fill(types, TokenType.NORMAL);
        }
        int n = tokens.length;
        java.util.function.Function<TokenIds, MergeRanks> ranks = ids -> {
            MergeRanks cached = cache == null ? null : cache.load(n, merges.length());
            if (cached != null) return cached;
            MergeRanks made = MergeRanks.resolve(merges.asStrings(), ids);
            if (cache != null) cache.storeInBackground(made, n, merges.length());
            return made;
        };
        return new BytePairTokenizer(tokens, types, new TokenIds(tokens), ranks, g.getString("tokenizer.ggml.pre", "default"),
                SentencePieceTokenizer.id(g, "tokenizer.ggml.bos_token_id", -1, n),
                SentencePieceTokenizer.id(g, "tokenizer.ggml.eos_token_id", -1, n),
                SentencePieceTokenizer.id(g, "tokenizer.ggml.eot_token_id", -1, n),
                SentencePieceTokenizer.id(g, "tokenizer.ggml.eom_token_id", -1, n),
                g.getBoolean("tokenizer.ggml.add_bos_token", false),
                g.getBoolean("tokenizer.ggml.add_eos_token", false));
    }

    @Override
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        SentencePieceTokenizer.IntList out = new SentencePieceTokenizer.IntList(text.length() / 3 + 4);
        if (addSpecial && addBos && bos >= 0) out.add(bos);
        specials.split(text, parseSpecial, new SpecialTokenSplitter.Sink() {
            @Override
            public void text(String raw) {
                for (String word : preTokenize(raw)) encodeWord(word, out);
            }

            @Override
            public void token(int id) {
                out.add(id);
            }
        });
        if (addSpecial && addEos && eos >= 0) out.add(eos);
        return out.toArray();
    }

    /** Applies the pre-tokenizer regexes in turn; matches and the text between them both become pieces. */
    List<String> preTokenize(String text) {
        List<String> pieces = List.of(text);
        for (Pattern p : pre) {
            List<String> next = new java.util.ArrayList<>();
            for (String piece : pieces) {
                Matcher m = p.matcher(piece);
                int last = 0;
                while (m.find()) {
                    if (m.start() > last) next.add(piece.substring(last, m.start()));
                    if (m.end() > m.start()) next.add(m.group());
                    last = m.end();
                }
                if (last < piece.length()) next.add(piece.substring(last));
            }
            pieces = next;
        }
        return pieces;
    }

    private void encodeWord(String word, SentencePieceTokenizer.IntList out) {
        byte[] utf8 = word.getBytes(StandardCharsets.UTF_8);
        StringBuilder mapped = new StringBuilder(utf8.length);
        for (byte b : utf8) mapped.append(BYTE_TO_CHAR[b & 0xFF]);
        String w = mapped.toString();
        if (ignoreMerges) {
            int whole = ids.get(w);
            if (whole >= 0) {
                out.add(whole);
                return;
            }
        }
        int n = w.length(); // every mapped character is one UTF-16 unit (all below U+0200)
        int[] start = new int[n];
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            start[i] = i;
            len[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<long[]> queue = new PriorityQueue<>((a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
        for (int i = 1; i < n; i++) addPair(w, start, len, i - 1, i, queue);
        while (!queue.isEmpty()) {
            long[] top = queue.poll();
            int left = (int) top[1];
            int right = (int) top[2];
            int size = (int) top[3];
            if (len[left] == 0 || len[right] == 0 || len[left] + len[right] != size || next[left] != right) continue;
            len[left] += len[right];
            len[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            addPair(w, start, len, prev[left], left, queue);
            addPair(w, start, len, left, next[left], queue);
        }
        for (int s = n > 0 ? 0 : -1; s != -1; s = next[s]) {
            int id = ids.get(w, start[s], start[s] + len[s]);
            if (id >= 0) {
                out.add(id);
            } else {
                for (int k = start[s]; k < start[s] + len[s]; k++) {
                    int single = ids.get(w, k, k + 1);
                    if (single >= 0) out.add(single);
                }
            }
        }
    }

    private void addPair(String w, int[] start, int[] len, int left, int right, PriorityQueue<long[]> queue) {
        if (left < 0 || right < 0) return;
        int li = ids.get(w, start[left], start[left] + len[left]);
        int ri = li < 0 ? -1 : ids.get(w, start[right], start[right] + len[right]);
        int rank = ri < 0 ? -1 : mergeRanks.rank(li, ri);
        if (rank < 0) return;
        queue.add(new long[] {rank, left, right, len[left] + len[right]});
    }

    @Override
    protected byte[] render(int token) {
        return switch (types[token]) {
            case TokenType.CONTROL, TokenType.UNKNOWN -> new byte[0];
            case TokenType.USER_DEFINED -> tokens[token].getBytes(StandardCharsets.UTF_8);
            default -> unmap(tokens[token]);
        };
    }

    /** GPT-2 characters back to bytes; characters outside the table stand for themselves (as UTF-8). */
    private static byte[] unmap(String s) {
        byte[] out = new byte[s.length()]; // one byte per character, the usual case; grown for the others
        int o = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            if (cp < CHAR_TO_BYTE.length && CHAR_TO_BYTE[cp] >= 0) {
                if (o == out.length) out = Arrays.copyOf(out, o + 4);
                out[o++] = (byte) CHAR_TO_BYTE[cp];
            } else {
                byte[] utf8 = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
                if (o + utf8.length > out.length) out = Arrays.copyOf(out, o + utf8.length + s.length() - i);
                System.arraycopy(utf8, 0, out, o, utf8.length);
                o += utf8.length;
            }
        }
        return o == out.length ? out : Arrays.copyOf(out, o);
    }

}
