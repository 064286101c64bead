package dev.enclave.runtime.synth;

/** The real dimensions of models customers run, for random-weight benchmark files of the same size. */
public enum ModelShape {
    LLAMA_3_2_1B("llama-3.2-1b", "llama", 2048, 16, 32, 8, 64, 8192, 128256, 500000f, 1e-5f, true, 131072),
    LLAMA_3_2_3B("llama-3.2-3b", "llama", 3072, 28, 24, 8, 128, 8192, 128256, 500000f, 1e-5f, true, 131072),
    QWEN2_5_0_5B("qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 64, 4864, 151936, 1000000f, 1e-6f, true, 32768),
    QWEN2_5_1_5B("qwen2.5-1.5b", "qwen2", 1536, 28, 12, 2, 128, 8960, 151936, 1000000f, 1e-6f, true, 32768);

    public final String id;
    public final String arch;
    public final int dim, layers, heads, kvHeads, headDim, ff, vocab;
    public final float ropeBase, eps;
    public final boolean tied;
    public final int context;

    ModelShape(String id, String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ff, int vocab,
               float ropeBase, float eps, boolean tied, int context) {
        this.id = id;
        this.arch = arch;
        this.dim = dim;
        this.layers = layers;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.ff = ff;
        this.vocab = vocab;
        this.ropeBase = ropeBase;
        this.eps = eps;
        this.tied = tied;
        this.context = context;
    }

    public static ModelShape byId(String id) {
        for (ModelShape s : values()) if (s.id.equals(id)) return s;
        throw new IllegalArgumentException("unknown shape '" + id + "' (known: llama-3.2-1b, llama-3.2-3b, qwen2.5-0.5b, qwen2.5-1.5b)");
    }

    public long parameters() {
        long attn = (long) dim * heads * headDim * 2 + 2L * dim * kvHeads * headDim;
        long mlp = 3L * dim * ff;
        return (long) vocab * dim * (tied ? 1 : 2) + layers * (attn + mlp + 2L * dim) + dim;
    }
}
