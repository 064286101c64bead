package dev.enclave.runtime.synth;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFArray;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFValueType;
import dev.enclave.runtime.gguf.GGUFWriter;
import dev.enclave.runtime.quant.Quantizer;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Writes a random-weight GGUF model of a real shape and size through the runtime's own writer and quantizers, so
 * that speed can be measured on realistic files with no download. Weights are uniform in ±0.04 (about the spread
 * of trained weights), norms are 1. The tokenizer is either copied from a vocabulary GGUF (e.g. llama.cpp's
 * vocab files) or synthesized: a byte-level BPE of the real vocabulary size built from random merges.
 *
 * <p>Quantization mixes types the way llama.cpp does: the embedding/output matrix stays Q6_K in Q4_0 and Q4_K_M
 * files (Q8_0 in Q8_0 files), and Q4_K_M keeps attn_v and ffn_down in Q6_K on the first and last eighth of the
 * layers and every third in between. Rows whose length is not a multiple of 256 fall back to Q8_0 from K-quants.
 */
public final class SyntheticModel {

    public enum FileType {
        F16, Q8_0, Q4_0, Q4_K_M;

        public static FileType parse(String s) {
            for (FileType t : values()) if (t.name().equalsIgnoreCase(s)) return t;
            throw new IllegalArgumentException("unknown type '" + s + "' (known: F16, Q8_0, Q4_0, Q4_K_M)");
        }

        /** {@code general.file_type} as llama.cpp numbers it. */
        int ggufId() {
            return switch (this) {
                case F16 -> 1;
                case Q8_0 -> 7;
                case Q4_0 -> 2;
                case Q4_K_M -> 15;
            };
        }

        /** The token embedding's (and output's) type. */
        GGMLType embeddingType() {
            return this == F16 ? GGMLType.F16 : this == Q8_0 ? GGMLType.Q8_0 : GGMLType.Q6_K;
        }

        /**
         * A layer matrix's type; Q4_K_M keeps attn_v and ffn_down ({@code moreBits}) in Q6_K on the first and last
         * eighth of the layers and every third in between.
         */
        GGMLType layerType(boolean moreBits, int layer, int layers) {
            return switch (this) {
                case F16 -> GGMLType.F16;
                case Q8_0 -> GGMLType.Q8_0;
                case Q4_0 -> GGMLType.Q4_0;
                case Q4_K_M -> {
                    boolean more = layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
                    yield moreBits && more ? GGMLType.Q6_K : GGMLType.Q4_K;
                }
            };
        }
    }

    private final ModelShape shape;
    private final FileType fileType;
    private final long seed;

    public SyntheticModel(ModelShape shape, FileType fileType, long seed) {
        this.shape = shape;
        this.fileType = fileType;
        this.seed = seed;
    }

    public void write(Path out, Path vocabFrom) throws IOException {
        GGUFWriter w = new GGUFWriter();
        String a = shape.arch;
        w.put("general.architecture", a);
        w.put("general.name", "synthetic " + shape.id + " " + fileType);
        w.put("general.description", "random-weight benchmark model (seed " + seed + "); not a trained model");
        w.put("general.file_type", new GGUFWriter.Typed(GGUFValueType.UINT32, fileType.ggufId()));
        w.put("general.quantization_version", new GGUFWriter.Typed(GGUFValueType.UINT32, 2));
        w.put(a + ".context_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.context));
        w.put(a + ".embedding_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.dim));
        w.put(a + ".block_count", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.layers));
        w.put(a + ".feed_forward_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.ff));
        w.put(a + ".attention.head_count", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.heads));
        w.put(a + ".attention.head_count_kv", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.kvHeads));
        if (shape.headDim * shape.heads != shape.dim) {
            w.put(a + ".attention.key_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.headDim));
            w.put(a + ".attention.value_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.headDim));
        }
        w.put(a + ".rope.dimension_count", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.headDim));
        w.put(a + ".rope.freq_base", shape.ropeBase);
        w.put(a + ".attention.layer_norm_rms_epsilon", shape.eps);
        w.put(a + ".vocab_size", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.vocab));
        tokenizer(w, vocabFrom);

        int dim = shape.dim;
        int q = shape.heads * shape.headDim;
        int kv = shape.kvHeads * shape.headDim;
        GGMLType big = fileType.embeddingType();
        matrix(w, "token_embd.weight", big, dim, shape.vocab, 1);
        if (!shape.tied) matrix(w, "output.weight", big, dim, shape.vocab, 2);
        vector(w, "output_norm.weight", dim, 1f);
        if (shape.arch.equals("llama")) {
            w.tensor("rope_freqs.weight", llama3RopeFactors(), shape.headDim / 2);
        }
        for (int l = 0; l < shape.layers; l++) {
            String p = "blk." + l + ".";
            long s = 100L * (l + 1);
            vector(w, p + "attn_norm.weight", dim, 1f);
            vector(w, p + "ffn_norm.weight", dim, 1f);
            matrix(w, p + "attn_q.weight", type(false, l), dim, q, s + 1);
            matrix(w, p + "attn_k.weight", type(false, l), dim, kv, s + 2);
            matrix(w, p + "attn_v.weight", type(true, l), dim, kv, s + 3);
            matrix(w, p + "attn_output.weight", type(false, l), q, dim, s + 4);
            matrix(w, p + "ffn_gate.weight", type(false, l), dim, shape.ff, s + 5);
            matrix(w, p + "ffn_up.weight", type(false, l), dim, shape.ff, s + 6);
            matrix(w, p + "ffn_down.weight", type(true, l), shape.ff, dim, s + 7);
            if (shape.arch.equals("qwen2")) {
                vector(w, p + "attn_q.bias", q, 0f);
                vector(w, p + "attn_k.bias", kv, 0f);
                vector(w, p + "attn_v.bias", kv, 0f);
            }
        }
        w.write(out);
    }

    private GGMLType type(boolean moreBits, int layer) {
        return fileType.layerType(moreBits, layer, shape.layers);
    }

    private void matrix(GGUFWriter w, String name, GGMLType type, int cols, int rows, long salt) {
        GGMLType t = (type == GGMLType.Q4_K || type == GGMLType.Q6_K) && cols % 256 != 0 ? GGMLType.Q8_0 : type;
        w.lazyTensor(name, t, () -> {
            SplittableRandom r = new SplittableRandom(seed * 1_000_003L + salt);
            long bytes = t.byteSize((long) cols * rows);
            MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(bytes)]);
            float[] row = new float[cols];
            long rowBytes = t.byteSize(cols);
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) row[j] = (float) ((r.nextInt(1 << 24) - (1 << 23)) * (0.04 / (1 << 23)));
                MemorySegment.copy(MemorySegment.ofArray(Quantizer.quantize(t, row, cols)), 0, out, i * rowBytes, rowBytes);
            }
            return out;
        }, cols, rows);
    }

    private static void vector(GGUFWriter w, String name, int n, float value) {
        float[] v = new float[n];
        java.util.Arrays.fill(v, value);
        w.tensor(name, v, n);
    }

    /** Llama 3.x rope scaling (factor 32, low 1, high 4, original context 8192) as llama.cpp's converter writes it. */
    private float[] llama3RopeFactors() {
        int half = shape.headDim / 2;
        float[] f = new float[half];
        double factor = 32, low = 1, high = 4, old = 8192;
        double lowWave = old / low, highWave = old / high;
        for (int i = 0; i < half; i++) {
            double freq = Math.pow(shape.ropeBase, -2.0 * i / shape.headDim);
            double wave = 2 * Math.PI / freq;
            if (wave < highWave) f[i] = 1f;
            else if (wave > lowWave) f[i] = (float) factor;
            else {
                double smooth = (old / wave - low) / (high - low);
                f[i] = (float) (1 / ((1 - smooth) / factor + smooth));
            }
        }
        return f;
    }

    /** Llama 3's instruct template: header tokens around each role, content trimmed, {@code <|eot_id|>} after it. */
    static final String LLAMA3_CHAT_TEMPLATE = "{% for message in messages %}{% set content = '<|start_header_id|>' + "
            + "message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}"
            + "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    /** ChatML, as Qwen2.5 writes it (without its default system message). */
    static final String CHATML_TEMPLATE = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
            + "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /**
     * The chat template of the instruct model of this shape's family, when the vocabulary has its special tokens
     * and did not bring a template (llama.cpp's vocab files carry none): chat benchmarks then prompt the model as
     * clients prompt the real one, through a template.
     */
    static String chatTemplate(String arch, String[] all) {
        java.util.Set<String> specials = new java.util.HashSet<>(); // special tokens come last in both vocabularies
        for (int i = Math.max(0, all.length - 512); i < all.length; i++) specials.add(all[i]);
        if (arch.equals("llama") && specials.contains("<|start_header_id|>") && specials.contains("<|eot_id|>")) {
            return LLAMA3_CHAT_TEMPLATE;
        }
        if (arch.equals("qwen2") && specials.contains("<|im_start|>") && specials.contains("<|im_end|>")) {
            return CHATML_TEMPLATE;
        }
        return null;
    }

    private void tokenizer(GGUFWriter w, Path vocabFrom) throws IOException {
        if (vocabFrom != null) {
            try (GGUFFile v = GGUFFile.open(vocabFrom)) {
                int n = v.getArray("tokenizer.ggml.tokens").length();
                if (n != shape.vocab) {
                    throw new IllegalArgumentException(vocabFrom + " has " + n + " tokens; " + shape.id + " needs " + shape.vocab);
                }
                for (Map.Entry<String, Object> e : v.metadata().entrySet()) {
                    if (e.getKey().startsWith("tokenizer.")) w.put(e.getKey(), v.typedValue(e.getKey()));
                }
                if (!v.metadata().containsKey("tokenizer.chat_template")) {
                    String template = chatTemplate(shape.arch, v.getArray("tokenizer.ggml.tokens").asStrings());
                    if (template != null) w.put("tokenizer.chat_template", template);
                }
            }
            return;
        }
        // synthesized byte-level BPE: the 256 GPT-2 byte symbols, then random merges of existing tokens
        SplittableRandom r = new SplittableRandom(seed);
        int specials = 3;
        List<String> tokens = new ArrayList<>(shape.vocab);
        Set<String> seen = new HashSet<>();
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            tokens.add(String.valueOf(printable ? (char) b : (char) (256 + countNonPrintable(b))));
        }
        seen.addAll(tokens);
        List<String> merges = new ArrayList<>();
        while (tokens.size() < shape.vocab - specials) {
            String left = tokens.get(r.nextInt(Math.min(tokens.size(), 256 + merges.size() / 2 + 1)));
            String right = tokens.get(r.nextInt(256));
            String merged = left + right;
            if (merged.length() > 16 || !seen.add(merged)) continue;
            tokens.add(merged);
            merges.add(left + " " + right);
        }
        tokens.add("<|begin_of_text|>");
        tokens.add("<|end_of_text|>");
        tokens.add("<|eot_id|>");
        int[] types = new int[tokens.size()];
        java.util.Arrays.fill(types, 1);
        for (int i = tokens.size() - specials; i < tokens.size(); i++) types[i] = 3;
        w.put("tokenizer.ggml.model", "gpt2");
        w.put("tokenizer.ggml.pre", "llama-bpe");
        w.put("tokenizer.ggml.tokens", new GGUFArray(GGUFValueType.STRING, tokens.toArray(new String[0])));
        w.put("tokenizer.ggml.token_type", new GGUFArray(GGUFValueType.INT32, types));
        w.put("tokenizer.ggml.merges", new GGUFArray(GGUFValueType.STRING, merges.toArray(new String[0])));
        w.put("tokenizer.ggml.bos_token_id", new GGUFWriter.Typed(GGUFValueType.UINT32, tokens.size() - 3));
        w.put("tokenizer.ggml.eos_token_id", new GGUFWriter.Typed(GGUFValueType.UINT32, tokens.size() - 2));
        w.put("tokenizer.ggml.eot_token_id", new GGUFWriter.Typed(GGUFValueType.UINT32, tokens.size() - 1));
        w.put("tokenizer.ggml.add_bos_token", true);
    }

    private static int countNonPrintable(int b) {
        int n = 0;
        for (int i = 0; i < b; i++) {
            boolean printable = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF);
            if (!printable) n++;
        }
        return n;
    }
}
