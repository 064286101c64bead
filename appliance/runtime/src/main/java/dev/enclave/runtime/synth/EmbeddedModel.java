package dev.enclave.runtime.synth;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.gguf.GGUFValueType;
import dev.enclave.runtime.gguf.GGUFWriter;
import dev.enclave.runtime.quant.Quantizer;
import dev.enclave.runtime.tensor.FloatTensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Map;

/**
 * A trained small Llama written inside a larger model's shape: its weights in the corner of each larger matrix,
 * zeros everywhere else, so the file computes what the small model computes (same tokens, logits equal up to
 * rounding) at the cost of the large shape. This is what speculative decoding and serving are measured on when no
 * trained model of a realistic size may be downloaded: a model that behaves like a trained one (it copies its
 * prompt) and whose steps are as memory-bound as a real 1B model's.
 *
 * <p>Why the function is unchanged: the residual stream's extra dimensions start at zero and every matrix that
 * writes to them is zero there; RMSNorm averages over all dimensions, so its weights are scaled by
 * √(small/large) and its epsilon by small/large; the small model's query heads sit on the large model's heads
 * that share its key/value heads (grouped-query attention); the small model's layers come first and the rest add
 * nothing (their output projections are zero). The vocabulary is the small model's.
 */
public final class EmbeddedModel {

    /** The large model's dimensions: a real {@link ModelShape}'s, or smaller ones in tests. */
    record Shape(String id, String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ff) {
    }

    private final Shape shape;
    private final SyntheticModel.FileType fileType;

    public EmbeddedModel(ModelShape s, SyntheticModel.FileType fileType) {
        this(new Shape(s.id, s.arch, s.dim, s.layers, s.heads, s.kvHeads, s.headDim, s.ff), fileType);
    }

    EmbeddedModel(Shape shape, SyntheticModel.FileType fileType) {
        this.shape = shape;
        this.fileType = fileType;
    }

    public void write(Path source, Path out) throws IOException {
        try (GGUFFile src = GGUFFile.open(source)) {
            String a = src.getString("general.architecture");
            if (!a.equals("llama") || !shape.arch().equals("llama")) {
                throw new IllegalArgumentException("--embed takes a llama model into a llama shape (" + source + " is " + a + ")");
            }
            int dim = src.getInt(a + ".embedding_length");
            int layers = src.getInt(a + ".block_count");
            int ff = src.getInt(a + ".feed_forward_length");
            int heads = src.getInt(a + ".attention.head_count");
            int kvHeads = src.getInt(a + ".attention.head_count_kv", heads);
            int headDim = src.getInt(a + ".attention.key_length", dim / heads);
            int group = heads / kvHeads;
            int bigGroup = shape.heads() / shape.kvHeads();
            if (headDim != shape.headDim() || dim > shape.dim() || layers > shape.layers() || ff > shape.ff()
                    || kvHeads > shape.kvHeads() || group > bigGroup || src.getInt(a + ".rope.dimension_count", headDim) != headDim) {
                throw new IllegalArgumentException(String.format("%s (dim %d, %d layers, ff %d, %d/%d heads of %d) does not fit in %s",
                        source, dim, layers, ff, heads, kvHeads, headDim, shape.id()));
            }
            // small query head h (key/value head h / group) sits on large head (h / group) * bigGroup + h % group
            int[] headAt = new int[heads];
            for (int h = 0; h < heads; h++) headAt[h] = (h / group) * bigGroup + h % group;
            float normScale = (float) Math.sqrt((double) dim / shape.dim());

            GGUFWriter w = new GGUFWriter();
            for (Map.Entry<String, Object> e : src.metadata().entrySet()) {
                String k = e.getKey();
                if (k.startsWith("tokenizer.") || k.equals("general.license")) w.put(k, src.typedValue(k));
            }
            w.put("general.architecture", a);
            w.put("general.name", src.getString("general.name", "model") + " in " + shape.id() + " " + fileType);
            w.put("general.description", "the trained model " + source.getFileName() + " inside the " + shape.id()
                    + " shape (zeros elsewhere): its outputs at a " + shape.id() + " model's cost");
            w.put("general.file_type", new GGUFWriter.Typed(GGUFValueType.UINT32, fileType.ggufId()));
            w.put("general.quantization_version", new GGUFWriter.Typed(GGUFValueType.UINT32, 2));
            w.put(a + ".context_length", src.typedValue(a + ".context_length"));
            w.put(a + ".embedding_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.dim()));
            w.put(a + ".block_count", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.layers()));
            w.put(a + ".feed_forward_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.ff()));
            w.put(a + ".attention.head_count", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.heads()));
            w.put(a + ".attention.head_count_kv", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.kvHeads()));
            if (shape.heads() * shape.headDim() != shape.dim()) {
                w.put(a + ".attention.key_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.headDim()));
                w.put(a + ".attention.value_length", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.headDim()));
            }
            w.put(a + ".rope.dimension_count", new GGUFWriter.Typed(GGUFValueType.UINT32, shape.headDim()));
            w.put(a + ".rope.freq_base", src.getFloat(a + ".rope.freq_base", 10000f));
            w.put(a + ".attention.layer_norm_rms_epsilon",
                    src.getFloat(a + ".attention.layer_norm_rms_epsilon") * dim / shape.dim());
            int vocab = src.getArray("tokenizer.ggml.tokens").length();
            w.put(a + ".vocab_size", new GGUFWriter.Typed(GGUFValueType.UINT32, vocab));
            if (src.tensors().containsKey("rope_freqs.weight")) w.tensor("rope_freqs.weight", floats(src, "rope_freqs.weight"), headDim / 2);

            int[] identity = identity(Math.max(shape.dim(), Math.max(shape.ff(), shape.heads() * shape.headDim())));
            int[] qRows = new int[heads * headDim];
            for (int h = 0; h < heads; h++) for (int i = 0; i < headDim; i++) qRows[h * headDim + i] = headAt[h] * headDim + i;
            GGMLType big = fileType.embeddingType();
            // rows are outputs, columns inputs (GGUF's first dimension); the small matrix goes where its indices map
            matrix(w, src, "token_embd.weight", big, vocab, shape.dim(), identity(vocab), identity);
            if (src.tensors().containsKey("output.weight")) {
                matrix(w, src, "output.weight", big, vocab, shape.dim(), identity(vocab), identity);
            }
            norm(w, src, "output_norm.weight", normScale);
            for (int l = 0; l < shape.layers(); l++) {
                String p = "blk." + l + ".";
                boolean real = l < layers;
                norm(w, real ? src : null, p + "attn_norm.weight", normScale);
                norm(w, real ? src : null, p + "ffn_norm.weight", normScale);
                int q = shape.heads() * headDim, kv = shape.kvHeads() * headDim;
                matrix(w, real ? src : null, p + "attn_q.weight", type(false, l), q, shape.dim(), qRows, identity);
                matrix(w, real ? src : null, p + "attn_k.weight", type(false, l), kv, shape.dim(), identity, identity);
                matrix(w, real ? src : null, p + "attn_v.weight", type(true, l), kv, shape.dim(), identity, identity);
                matrix(w, real ? src : null, p + "attn_output.weight", type(false, l), shape.dim(), q, identity, qRows);
                matrix(w, real ? src : null, p + "ffn_gate.weight", type(false, l), shape.ff(), shape.dim(), identity, identity);
                matrix(w, real ? src : null, p + "ffn_up.weight", type(false, l), shape.ff(), shape.dim(), identity, identity);
                matrix(w, real ? src : null, p + "ffn_down.weight", type(true, l), shape.dim(), shape.ff(), identity, identity);
            }
            w.write(out);
        }
    }

    private GGMLType type(boolean moreBits, int layer) {
        return fileType.layerType(moreBits, layer, shape.layers());
    }

    /**
     * A rows x cols matrix of the large shape holding the small one's entry (r, c) at (rowAt[r], colAt[c]); zeros
     * when {@code src} is null (a layer the small model does not have).
     */
    private static void matrix(GGUFWriter w, GGUFFile src, String name, GGMLType type, int rows, int cols,
                               int[] rowAt, int[] colAt) {
        GGMLType t = (type == GGMLType.Q4_K || type == GGMLType.Q6_K) && cols % 256 != 0 ? GGMLType.Q8_0 : type;
        w.lazyTensor(name, t, () -> {
            float[][] small = new float[rows][];
            if (src != null) {
                GGUFTensorInfo info = src.tensor(name);
                int smallCols = (int) info.dims()[0], smallRows = (int) info.rows();
                FloatTensor f = FloatTensor.of(info.type(), src.tensorData(info), info.elements());
                for (int r = 0; r < smallRows; r++) {
                    float[] row = small[rowAt[r]] = new float[cols];
                    for (int c = 0; c < smallCols; c++) row[colAt[c]] = f.getFloat((long) r * smallCols + c);
                }
            }
            long rowBytes = t.byteSize(cols);
            MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * rows)]);
            float[] zeros = new float[cols];
            for (int r = 0; r < rows; r++) {
                byte[] q = Quantizer.quantize(t, small[r] != null ? small[r] : zeros, cols);
                MemorySegment.copy(MemorySegment.ofArray(q), 0, out, r * rowBytes, rowBytes);
            }
            return out;
        }, cols, rows);
    }

    /** A norm's weights scaled so that its mean over the large dimension equals the small one's; zero past them. */
    private void norm(GGUFWriter w, GGUFFile src, String name, float scale) {
        float[] v = new float[shape.dim()];
        if (src != null) {
            float[] s = floats(src, name);
            for (int i = 0; i < s.length; i++) v[i] = s[i] * scale;
        } else {
            java.util.Arrays.fill(v, 1f);
        }
        w.tensor(name, v, shape.dim());
    }

    private static float[] floats(GGUFFile src, String name) {
        GGUFTensorInfo info = src.tensor(name);
        FloatTensor f = FloatTensor.of(info.type(), src.tensorData(info), info.elements());
        float[] v = new float[Math.toIntExact(info.elements())];
        for (int i = 0; i < v.length; i++) v[i] = f.getFloat(i);
        return v;
    }

    private static int[] identity(int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) a[i] = i;
        return a;
    }
}
