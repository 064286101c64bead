package dev.enclave.runtime.model;

import dev.enclave.runtime.ModelFormatException;
import dev.enclave.runtime.backend.KernelBackend;
import dev.enclave.runtime.backend.cpu.CpuBackend;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.kv.KvPool;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tensor.Int8RowsTensor;
import dev.enclave.runtime.tensor.Int8RowGroupTensor;
import dev.enclave.runtime.tensor.Q6RowGroupTensor;
import dev.enclave.runtime.tensor.Q4RowGroupTensor;
import dev.enclave.runtime.tensor.Q8RowGroupTensor;
import dev.enclave.runtime.tensor.Q8_0Tensor;
import dev.enclave.runtime.tensor.Q6_KTensor;
import dev.enclave.runtime.tensor.RowGroupTensor;
import java.lang.foreign.MemorySegment;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import dev.enclave.runtime.tensor.VectorMath;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * One forward pass for the decoder-only families in {@link Architecture}: token embedding, then per block
 * RMSNorm, attention with rotary positions and grouped KV heads over the sequence's KV cache, RMSNorm and a
 * gated feed-forward; a final RMSNorm and the output projection. Weights stay in the memory-mapped file in
 * whatever ggml type each tensor was stored (files mix types).
 */
public final class TransformerModel implements AutoCloseable {

    private final String name;
    private final GGUFFile gguf;
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final KernelBackend ops;

    private final FloatTensor tokenEmbedding;
    private final FloatTensor outputNorm;
    private final FloatTensor output;
    private final Layer[] layers;
    /** Rotary inverse frequencies per pair index (global and local layers), rope_freqs already applied. */
    private final float[] ropeInvFreq;
    private final float[] ropeInvFreqLocal;
    private final float embeddingScale;
    /** Memory for tensors repacked at load; freed with the model. */
    private final java.lang.foreign.Arena repackArena = java.lang.foreign.Arena.ofShared();
    private static final boolean REPACK_Q6_K = !Boolean.getBoolean("enclave.noRepack");
    private static final boolean WARM_UP = !Boolean.getBoolean("enclave.noWarmup");

    /** One block's weights; absent optional tensors are null. */
    private record Layer(FloatTensor attnNorm, FloatTensor wq, FloatTensor wk, FloatTensor wv, FloatTensor wqkv,
                         FloatTensor bq, FloatTensor bk, FloatTensor bv, FloatTensor qNorm, FloatTensor kNorm,
                         FloatTensor wo, FloatTensor attnPostNorm, FloatTensor ffnNorm, FloatTensor wGate,
                         FloatTensor wUp, FloatTensor wDown, FloatTensor ffnPostNorm) {
    }

    private final boolean repack4Bit;
    /** Repacked tensors kept on disk between starts; null when off. */
    private final RepackCache cache;
    private Thread cacheWriter;
    /** The kernels' warm-up, whose second phase (the batch kernels) may outlive the constructor; null when off. */
    private final dev.enclave.runtime.tensor.KernelWarmup warmup;

    private TransformerModel(String name, GGUFFile gguf, KernelBackend ops, ActivationPrecision activations, Path file) {
        // compile the kernels on the second core while this one reads the vocabulary and repacks tensors
        dev.enclave.runtime.tensor.KernelWarmup warmup = null;
        if (WARM_UP) {
            java.util.EnumSet<dev.enclave.runtime.gguf.GGMLType> types = java.util.EnumSet.noneOf(dev.enclave.runtime.gguf.GGMLType.class);
            java.util.Map<dev.enclave.runtime.gguf.GGMLType, MemorySegment> samples = new java.util.EnumMap<>(dev.enclave.runtime.gguf.GGMLType.class);
            boolean sixBits = false, int8 = false;
            for (GGUFTensorInfo t : gguf.tensors().values()) {
                types.add(t.type());
                samples.putIfAbsent(t.type(), gguf.tensorData(t));
                if (t.type() == dev.enclave.runtime.gguf.GGMLType.Q6_K && t.dims().length == 2) {
                    boolean six = isVocabularyMatrix(t.name()) && !Boolean.getBoolean(VOCABULARY_INT8);
                    sixBits |= six;
                    int8 |= !six;
                }
            }
            boolean repacked = activations == ActivationPrecision.Q8 && ops instanceof CpuBackend;
            boolean q6kSixBits = sixBits, q6kInt8 = int8;
            warmup = dev.enclave.runtime.tensor.KernelWarmup.start(types, repacked, q6kSixBits, q6kInt8, samples,
                    floatBatchWarmups(types, repacked, samples, ops));
        }
        this.name = name;
        this.gguf = gguf;
        this.ops = ops;
        this.repack4Bit = activations == ActivationPrecision.Q8 && ops instanceof CpuBackend;
        this.cache = repack4Bit ? RepackCache.open(file, repackArena) : null;
        this.config = ModelConfig.from(gguf);
        int maxPositions = config.contextLength();
        int groupHeads = Math.max(1, config.headCount() / Math.max(1, config.headCountKv()));
        this.scoreScratch = ThreadLocal.withInitial(() -> new float[maxPositions * groupHeads]);
        this.rowScratch = ThreadLocal.withInitial(() -> new int[maxPositions]);
        this.tokenizer = Tokenizer.fromGGUF(gguf);
        gguf.forgetArray("tokenizer.ggml.merges"); // the tokenizer keeps its own compact merge table
        gguf.releaseMetadataPages();
        ModelConfig c = config;
        Architecture arch = c.arch();
        if (tokenizer.vocabularySize() != c.vocabularySize()) {
            throw new ModelFormatException("tokenizer has " + tokenizer.vocabularySize() + " tokens, model " + c.vocabularySize());
        }
        int dim = c.embeddingLength();
        int ff = c.feedForwardLength();
        tokenEmbedding = tensor("token_embd.weight", dim, c.vocabularySize());
        outputNorm = tensor("output_norm.weight", dim);
        // Tied embeddings: without output.weight the embedding matrix doubles as the output projection.
        FloatTensor out = gguf.tensor("output.weight") != null ? tensor("output.weight", dim, c.vocabularySize()) : tokenEmbedding;
        output = out;
        layers = new Layer[c.blockCount()];
        for (int l = 0; l < layers.length; l++) {
            String p = "blk." + l + ".";
            boolean fusedQkv = gguf.tensor(p + "attn_qkv.weight") != null;
            boolean fusedGateUp = gguf.tensor(p + "ffn_gate.weight") == null;
            layers[l] = new Layer(
                    tensor(p + "attn_norm.weight", dim),
                    fusedQkv ? null : tensor(p + "attn_q.weight", dim, c.qDim()),
                    fusedQkv ? null : tensor(p + "attn_k.weight", dim, c.kvDim()),
                    fusedQkv ? null : tensor(p + "attn_v.weight", dim, c.kvDim()),
                    fusedQkv ? tensor(p + "attn_qkv.weight", dim, c.qDim() + 2L * c.kvDim()) : null,
                    arch.qkvBias ? tensor(p + "attn_q.bias", c.qDim()) : optional(p + "attn_q.bias", c.qDim()),
                    arch.qkvBias ? tensor(p + "attn_k.bias", c.kvDim()) : optional(p + "attn_k.bias", c.kvDim()),
                    arch.qkvBias ? tensor(p + "attn_v.bias", c.kvDim()) : optional(p + "attn_v.bias", c.kvDim()),
                    arch.qkNorm ? tensor(p + "attn_q_norm.weight", c.headDim()) : null,
                    arch.qkNorm ? tensor(p + "attn_k_norm.weight", c.headDim()) : null,
                    tensor(p + "attn_output.weight", c.qDim(), dim),
                    arch.gemma ? tensor(p + "post_attention_norm.weight", dim) : null,
                    tensor(p + "ffn_norm.weight", dim),
                    fusedGateUp ? null : tensor(p + "ffn_gate.weight", dim, ff),
                    fusedGateUp ? tensor(p + "ffn_up.weight", dim, 2L * ff) : tensor(p + "ffn_up.weight", dim, ff),
                    tensor(p + "ffn_down.weight", ff, dim),
                    arch.gemma ? tensor(p + "post_ffw_norm.weight", dim) : null);
        }
        FloatTensor ropeFreqs = optional("rope_freqs.weight", c.ropeDimensions() / 2);
        ropeInvFreq = invFreq(c.ropeFreqBase(), ropeFreqs);
        ropeInvFreqLocal = c.ropeFreqBaseLocal() == c.ropeFreqBase() ? ropeInvFreq : invFreq(c.ropeFreqBaseLocal(), null);
        embeddingScale = arch.gemma ? (float) Math.sqrt(dim) : 1f;
        if (warmup != null) {
            try {
                warmup.awaitFirstToken(); // the batch kernels finish compiling in the background
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        this.warmup = warmup;
        if (cache != null) cacheWriter = cache.writeInBackground();
    }

    /**
     * Prompt batches of the matrices that stay on the float route (F16, BF16, F32; Q8_0 where the integer route is not
     * preferred): their tiled batch product is other code than the dot product the warm-up compiles, and on an F16
     * file a 2-token first prompt ran it interpreted for 2.5 s. A slice of the model's own mapped weights, 5 tokens
     * (a 4-token tile and a single one), until compiled.
     */
    private static java.util.List<Runnable> floatBatchWarmups(java.util.Set<dev.enclave.runtime.gguf.GGMLType> types, boolean repacked,
                                                              java.util.Map<dev.enclave.runtime.gguf.GGMLType, MemorySegment> samples,
                                                              KernelBackend ops) {
        java.util.List<Runnable> tasks = new java.util.ArrayList<>();
        if (!(ops instanceof CpuBackend)) return tasks; // other backends compile their own kernels
        for (dev.enclave.runtime.gguf.GGMLType t : types) {
            boolean floatRoute = t == dev.enclave.runtime.gguf.GGMLType.F16 || t == dev.enclave.runtime.gguf.GGMLType.BF16
                    || t == dev.enclave.runtime.gguf.GGMLType.F32
                    || t == dev.enclave.runtime.gguf.GGMLType.Q8_0 && !(repacked && dev.enclave.runtime.tensor.Q8RowGroupTensor.PREFERRED);
            int rows = 64, cols = 512, tokens = 5;
            MemorySegment sample = samples.get(t);
            if (!floatRoute || sample == null || sample.byteSize() < t.byteSize((long) rows * cols)) continue;
            tasks.add(() -> {
                FloatTensor w = FloatTensor.of(t, sample.asSlice(0, t.byteSize((long) rows * cols)), (long) rows * cols);
                float[] x = new float[tokens * cols];
                for (int i = 0; i < x.length; i++) x[i] = (i % 7) * 0.01f;
                float[] out = new float[tokens * rows];
                dev.enclave.runtime.tensor.KernelWarmup.untilFast(() -> ops.matmulBatch(w, x, cols, out, 0, rows, rows, cols, tokens),
                        (double) rows * cols * tokens, 1.0, 5, t + " batch product");
            });
        }
        return tasks;
    }

    /**
     * Waits until every kernel this model runs is compiled, the batch kernels included (they finish in the background
     * after loading): benchmarks measure after it.
     */
    public void awaitWarmup() throws InterruptedException {
        if (warmup != null) warmup.join();
    }

    private float[] invFreq(float base, FloatTensor factors) {
        int pairs = config.ropeDimensions() / 2;
        float[] f = new float[pairs];
        for (int i = 0; i < pairs; i++) {
            double v = Math.pow(base, -2.0 * i / config.ropeDimensions()) / config.ropeScale();
            if (factors != null) {
                float factor = factors.getFloat(i);
                if (!(factor > 0f) || Float.isInfinite(factor)) {
                    throw new ModelFormatException("rope_freqs.weight[" + i + "] = " + factor + " is not a positive number");
                }
                v /= factor;
            }
            f[i] = (float) v;
        }
        return f;
    }

    /** Memory-maps a GGUF model file and prepares it for inference on the CPU. */
    public static TransformerModel load(Path path) throws IOException {
        return load(path, CpuBackend.instance());
    }

    /** Memory-maps a GGUF model file and prepares it for inference with the given kernels. */
    public static TransformerModel load(Path path, KernelBackend backend) throws IOException {
        return load(path, backend, ActivationPrecision.fromSystemProperty());
    }

    /** Memory-maps a GGUF model file and prepares it for inference with the given kernels and activation precision. */
    public static TransformerModel load(Path path, KernelBackend backend, ActivationPrecision activations) throws IOException {
        return load(path, GGUFFile.open(path), backend, activations);
    }

    /**
     * Prepares the model of {@code path}, already parsed as {@code gguf} (a caller may do other start-up work while
     * the file is parsed), for inference on the CPU; the model closes the file when closed, or at once if it fails.
     */
    public static TransformerModel load(Path path, GGUFFile gguf) {
        return load(path, gguf, CpuBackend.instance(), ActivationPrecision.fromSystemProperty());
    }

    private static TransformerModel load(Path path, GGUFFile gguf, KernelBackend backend, ActivationPrecision activations) {
        try {
            return new TransformerModel(modelName(path.getFileName().toString()), gguf, backend, activations, path);
        } catch (ModelFormatException e) {
            gguf.close();
            throw new ModelFormatException(path.getFileName() + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    /** Wraps an already-parsed GGUF file; the model closes it when closed. */
    public static TransformerModel load(String name, GGUFFile gguf) {
        try {
            return new TransformerModel(name, gguf, CpuBackend.instance(), ActivationPrecision.fromSystemProperty(), null);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    static String modelName(String fileName) {
        return fileName.endsWith(".gguf") ? fileName.substring(0, fileName.length() - 5) : fileName;
    }

    private FloatTensor optional(String name, long... dims) {
        return gguf.tensor(name) == null ? null : tensor(name, dims);
    }

    private FloatTensor tensor(String name, long... expectedDims) {
        GGUFTensorInfo t = gguf.tensor(name);
        if (t == null) {
            throw new ModelFormatException("model is missing tensor '" + name + "'");
        }
        long expected = 1;
        for (long d : expectedDims) expected *= d;
        if (t.elements() != expected || t.rowLength() != expectedDims[0]) {
            throw new ModelFormatException("tensor '" + name + "' has shape " + Arrays.toString(t.dims())
                    + ", expected " + Arrays.toString(expectedDims));
        }
        FloatTensor tensor = FloatTensor.of(t.type(), gguf.tensorData(t), t.elements());
        boolean grouped = repack4Bit && expectedDims.length == 2 && (Q4RowGroupTensor.supports(tensor, expectedDims[1], expectedDims[0])
                || Q6RowGroupTensor.supports(tensor, expectedDims[1], expectedDims[0]) // Q6_K: either form
                || Q8RowGroupTensor.PREFERRED && Q8RowGroupTensor.supports(tensor, expectedDims[1], expectedDims[0]));
        if (grouped && cache != null) {
            RowGroupTensor cached = cache.get(name, RowGroupTensor.kindOf(groupKind(name, tensor)), t.type(), (int) expectedDims[1], (int) expectedDims[0]);
            if (cached != null) return cached; // mapped from the cache file: the model file's pages are never touched
        }
        if (grouped) {
            tensor = repackGrouped(name, t, tensor, (int) expectedDims[1], (int) expectedDims[0]);
            if (cache != null) cache.put(name, (RowGroupTensor) tensor);
        } else if (tensor instanceof Q6_KTensor q6 && REPACK_Q6_K) {
            // Q6_K's bit layout costs ten times more to decode than int8 with a scale per 16 values, which holds the
            // same values exactly: repack at load (52% more bytes for these tensors, ~10x faster products)
            tensor = Int8RowsTensor.fromQ6_K(q6, repackArena);
            MemorySegment src = gguf.tensorData(t);
            if (src.isMapped()) src.unload(); // the file's pages are no longer needed in memory
        }
        return tensor;
    }

    /**
     * The repacked form of a 4-bit or Q6_K matrix. The vocabulary-sized Q6_K matrices (the output, or the embedding
     * tied to it) are multiplied once per generated token and never per prompt token: their bytes (a quarter of a 1B
     * model's) cost more than their arithmetic, so they keep 6 bits; a layer's Q6_K matrices are multiplied for every
     * prompt token, where int8's cheaper products win (4-token kernel ~1.4x faster, for 30% more bytes).
     */
    private static Class<? extends RowGroupTensor> groupKind(String name, FloatTensor tensor) {
        if (tensor instanceof Q8_0Tensor) return Q8RowGroupTensor.class;
        if (!(tensor instanceof Q6_KTensor)) return Q4RowGroupTensor.class;
        return isVocabularyMatrix(name) && !Boolean.getBoolean(VOCABULARY_INT8) ? Q6RowGroupTensor.class : Int8RowGroupTensor.class;
    }

    /**
     * System property: hold the vocabulary-sized Q6_K matrix as int8 too. For an engine that decodes many sequences
     * at once (the server sets it from 4 active sequences up): its 4-token products are ~1.4x faster at int8, which
     * was 2-5% of the 8-client throughput, for 65 MB more memory on a 1B model.
     */
    public static final String VOCABULARY_INT8 = "enclave.vocabulary-int8";

    /** The output matrix or the token embedding (which may be tied to it): a row per vocabulary entry. */
    private static boolean isVocabularyMatrix(String name) {
        return name.equals("output.weight") || name.equals("token_embd.weight");
    }

    /** The integer route's repacking (see Q4RowGroupTensor, Q6RowGroupTensor, Int8RowGroupTensor, Q8RowGroupTensor): same values, faster products. */
    private RowGroupTensor repackGrouped(String name, GGUFTensorInfo t, FloatTensor tensor, int rows, int cols) {
        RowGroupTensor r;
        try {
            Class<? extends RowGroupTensor> kind = groupKind(name, tensor);
            if (kind == Q6RowGroupTensor.class) r = Q6RowGroupTensor.repack((Q6_KTensor) tensor, rows, cols, repackArena);
            else if (kind == Int8RowGroupTensor.class) r = Int8RowGroupTensor.repack((Q6_KTensor) tensor, rows, cols, repackArena);
            else if (kind == Q8RowGroupTensor.class) r = Q8RowGroupTensor.repack(tensor, rows, cols, repackArena);
            else r = Q4RowGroupTensor.repack(tensor, rows, cols, repackArena);
        } catch (ModelFormatException e) {
            throw new ModelFormatException("tensor '" + name + "' " + e.getMessage(), e);
        }
        MemorySegment src = gguf.tensorData(t);
        if (src.isMapped()) src.unload(); // the file's pages are no longer needed in memory
        return r;
    }

    public String name() {
        return name;
    }

    /** The background write of the repack cache started by this load, or null (for tests). */
    Thread cacheWriter() {
        return cacheWriter;
    }

    public ModelConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public GGUFFile gguf() {
        return gguf;
    }

    /** A fresh sequence state with a private KV cache for {@code contextLength} positions (capped at the model's). */
    public InferenceState newState(int contextLength) {
        int n = Math.min(contextLength, config.contextLength());
        if (n <= 0) {
            throw new IllegalArgumentException("context length must be positive");
        }
        return new InferenceState(config, n);
    }

    /** A sequence whose KV cache lives in a shared pool (continuous batching, prefix sharing). */
    public InferenceState newState(int contextLength, KvPool pool) {
        int n = Math.min(contextLength, config.contextLength());
        if (n <= 0) throw new IllegalArgumentException("context length must be positive");
        if (pool.kvDim != config.kvDim() || pool.keys.length != config.blockCount()) {
            throw new IllegalArgumentException("KV pool shape does not fit this model");
        }
        return new InferenceState(config, n, pool);
    }

    /** A KV pool for this model sized to a memory budget. */
    public KvPool newKvPool(int blockSize, long bytes) {
        return KvPool.forBudget(config.blockCount(), config.kvDim(), blockSize, bytes);
    }

    /** What {@link #newKvPool} would allocate for this budget, in bytes, without allocating it. */
    public long newKvPoolBytes(int blockSize, long bytes) {
        return KvPool.bytesForBudget(config.blockCount(), config.kvDim(), blockSize, bytes);
    }

    /** Tokens per prompt-processing step: each weight row is decoded once per step and used for all of them. */
    static final int PREFILL_CHUNK = 64;
    /**
     * Steps of this many tokens or more take the batched path, which reads each weight once for all of them (few
     * tokens go through fused per-row or per-group kernels, not through rows decoded to floats); one token alone
     * takes the single-token path.
     */
    public static final int BATCH_MIN = 2;

    /**
     * Runs {@code tokens} in order, appending them to the state's cache; returns the last position's logits. Long
     * prompts go through the batched path, {@link #PREFILL_CHUNK} tokens per step.
     */
    public float[] ingest(InferenceState s, int[] tokens) {
        int i = 0;
        InferenceState[] one = {s};
        int[] from = new int[1];
        int[] count = new int[1];
        int[][] toks = {tokens};
        while (tokens.length - i >= BATCH_MIN) {
            from[0] = i;
            count[0] = Math.min(PREFILL_CHUNK, tokens.length - i);
            forwardBatch(one, toks, from, count);
            i += count[0];
        }
        for (; i < tokens.length; i++) forward(s, tokens[i]);
        return s.logits;
    }

    /**
     * One step over several sequences at once (continuous batching): sequence i contributes
     * {@code tokens[i][from[i] .. from[i] + count[i])} at its next positions (one token while decoding, a chunk
     * while reading its prompt). Every weight row is decoded once for all tokens of the step. Afterwards each
     * state holds the logits of its last token.
     */
    public void forwardBatch(InferenceState[] states, int[][] tokens, int[] from, int[] count) {
        ModelConfig c = config;
        int total = 0;
        for (int i = 0; i < states.length; i++) {
            InferenceState st = states[i];
            if (st.position + count[i] > st.contextLength) {
                throw new IllegalStateException("context is full (" + st.contextLength + " positions)");
            }
            if (!st.table.ensure(st.position + count[i])) {
                throw new IllegalStateException("the KV cache pool is exhausted");
            }
            for (int k = 0; k < count[i]; k++) {
                int token = tokens[i][from[i] + k];
                if (token < 0 || token >= c.vocabularySize()) {
                    throw new IllegalArgumentException("token id " + token + " is outside the vocabulary [0, " + c.vocabularySize() + ")");
                }
            }
            total += count[i];
        }
        InferenceState.Batch b = states[0].batch(Math.max(total, states.length));
        AttentionJob attentionJob = new AttentionJob();
        {
            int j = 0;
            for (int i = 0; i < states.length; i++) {
                for (int k = 0; k < count[i]; k++, j++) {
                    b.token[j] = tokens[i][from[i] + k];
                    b.owner[j] = i;
                    b.pos[j] = states[i].position + k;
                }
            }
        }
        int dim = c.embeddingLength();
        int headDim = c.headDim();
        int kvDim = c.kvDim();
        int qDim = c.qDim();
        int ff = c.feedForwardLength();
        int groups = c.headCount() / c.headCountKv();
        float eps = c.rmsEps();
        int xbW = Math.max(dim, qDim);

        for (int j = 0; j < total; j++) {
            tokenEmbedding.copyTo((long) b.token[j] * dim, b.x, j * dim, dim);
            if (embeddingScale != 1f) for (int i = 0; i < dim; i++) b.x[j * dim + i] *= embeddingScale;
        }
        for (int l = 0; l < layers.length; l++) {
            Layer w = layers[l];
            for (int j = 0; j < total; j++) ops.rmsnorm(b.xb, j * xbW, b.x, j * dim, w.attnNorm, dim, eps);
            if (w.wqkv != null) {
                int fused = qDim + 2 * kvDim;
                ops.matmulBatch(w.wqkv, b.xb, xbW, b.qkv, 0, fused, fused, dim, total);
                for (int j = 0; j < total; j++) {
                    System.arraycopy(b.qkv, j * fused, b.q, j * qDim, qDim);
                    System.arraycopy(b.qkv, j * fused + qDim, b.k, j * kvDim, kvDim);
                    System.arraycopy(b.qkv, j * fused + qDim + kvDim, b.v, j * kvDim, kvDim);
                }
            } else {
                ops.matmulBatch(w.wq, b.xb, xbW, b.q, 0, qDim, qDim, dim, total);
                ops.matmulBatch(w.wk, b.xb, xbW, b.k, 0, kvDim, kvDim, dim, total);
                ops.matmulBatch(w.wv, b.xb, xbW, b.v, 0, kvDim, kvDim, dim, total);
            }
            boolean sliding = c.isSlidingLayer(l);
            float[] invFreq = sliding ? ropeInvFreqLocal : ropeInvFreq;
            for (int j = 0; j < total; j++) {
                InferenceState st = states[b.owner[j]];
                int pos = b.pos[j];
                int qo = j * qDim;
                int ko = j * kvDim;
                if (w.bq != null) addBias(b.q, qo, w.bq, qDim);
                if (w.bk != null) addBias(b.k, ko, w.bk, kvDim);
                if (w.bv != null) addBias(b.v, ko, w.bv, kvDim);
                if (w.qNorm != null) {
                    for (int h = 0; h < c.headCount(); h++) ops.rmsnorm(b.q, qo + h * headDim, b.q, qo + h * headDim, w.qNorm, headDim, eps);
                    for (int h = 0; h < c.headCountKv(); h++) ops.rmsnorm(b.k, ko + h * headDim, b.k, ko + h * headDim, w.kNorm, headDim, eps);
                }
                for (int h = 0; h < c.headCount(); h++) rope(b.q, qo + h * headDim, pos, invFreq);
                for (int h = 0; h < c.headCountKv(); h++) rope(b.k, ko + h * headDim, pos, invFreq);
                int cacheOff = st.table.offset(pos);
                System.arraycopy(b.k, ko, st.pool.keys[l], cacheOff, kvDim);
                System.arraycopy(b.v, ko, st.pool.values[l], cacheOff, kvDim);
            }
            attentionJob.set(states, b, l, total, sliding, groups, xbW);
            // every (token, KV head) pair is independent: split by KV head, so each thread gets every token (a prompt
            // chunk's later tokens attend over more positions than its first ones) and reads its heads' rows only
            ops.parallel(total * c.headCountKv(), attentionJob);
            ops.matmulBatch(w.wo, b.xb, xbW, b.xb2, 0, dim, dim, qDim, total);
            for (int j = 0; j < total; j++) {
                if (w.attnPostNorm != null) ops.rmsnorm(b.xb2, j * dim, b.xb2, j * dim, w.attnPostNorm, dim, eps);
                for (int i = 0; i < dim; i++) b.x[j * dim + i] += b.xb2[j * dim + i];
                ops.rmsnorm(b.xb, j * xbW, b.x, j * dim, w.ffnNorm, dim, eps);
            }
            int upW;
            if (w.wGate != null) {
                ops.matmulBatch(w.wGate, b.xb, xbW, b.hb, 0, ff, ff, dim, total);
                ops.matmulBatch(w.wUp, b.xb, xbW, b.hb2, 0, ff, ff, dim, total);
                upW = ff;
            } else {
                ops.matmulBatch(w.wUp, b.xb, xbW, b.hb, 0, 2 * ff, 2 * ff, dim, total);
                upW = 2 * ff;
            }
            for (int j = 0; j < total; j++) {
                int go = j * upW;
                float[] up = w.wGate != null ? b.hb2 : b.hb;
                int uo = w.wGate != null ? j * ff : j * upW + ff;
                if (config.arch().gemma) {
                    for (int i = 0; i < ff; i++) b.hb[go + i] = gelu(b.hb[go + i]) * up[uo + i];
                } else {
                    VectorMath.siluMul(b.hb, go, up, uo, ff);
                }
            }
            ops.matmulBatch(w.wDown, b.hb, upW, b.xb2, 0, dim, dim, ff, total);
            for (int j = 0; j < total; j++) {
                if (w.ffnPostNorm != null) ops.rmsnorm(b.xb2, j * dim, b.xb2, j * dim, w.ffnPostNorm, dim, eps);
                for (int i = 0; i < dim; i++) b.x[j * dim + i] += b.xb2[j * dim + i];
            }
        }
        // logits for each sequence's last token only
        int j = 0;
        for (int i = 0; i < states.length; i++) {
            j += count[i];
            states[i].position += count[i];
            System.arraycopy(b.x, (j - 1) * dim, states[i].x, 0, dim);
        }
        if (states.length >= BATCH_MIN) {
            int vocab = c.vocabularySize();
            if (b.logits == null || b.logits.length < states.length * vocab) b.logits = new float[states.length * vocab];
            for (int i = 0; i < states.length; i++) ops.rmsnorm(b.xb, i * xbW, states[i].x, 0, outputNorm, dim, eps);
            ops.matmulBatch(output, b.xb, xbW, b.logits, 0, vocab, vocab, dim, states.length);
            for (int i = 0; i < states.length; i++) {
                System.arraycopy(b.logits, i * vocab, states[i].logits, 0, vocab);
                finishSoftcapAndCheck(states[i]);
            }
        } else {
            for (InferenceState st : states) finishLogits(st);
        }
    }

    /** Runs one token at the state's next position and returns the logits (a buffer reused by the next call). */
    public float[] forward(InferenceState s, int token) {
        ModelConfig c = config;
        if (token < 0 || token >= c.vocabularySize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary [0, " + c.vocabularySize() + ")");
        }
        int pos = s.position;
        if (pos >= s.contextLength) {
            throw new IllegalStateException("context is full (" + s.contextLength + " positions)");
        }
        if (!s.table.ensure(pos + 1)) {
            throw new IllegalStateException("the KV cache pool is exhausted");
        }
        int dim = c.embeddingLength();
        int headDim = c.headDim();
        int kvDim = c.kvDim();
        int qDim = c.qDim();
        int ff = c.feedForwardLength();
        int groups = c.headCount() / c.headCountKv();
        float eps = c.rmsEps();
        int cacheOff = s.table.offset(pos);

        tokenEmbedding.copyTo((long) token * dim, s.x, 0, dim);
        if (embeddingScale != 1f) {
            for (int i = 0; i < dim; i++) s.x[i] *= embeddingScale;
        }

        for (int l = 0; l < layers.length; l++) {
            Layer w = layers[l];
            ops.rmsnorm(s.xb, 0, s.x, 0, w.attnNorm, dim, eps);
            float[] kc = s.pool.keys[l];
            float[] vc = s.pool.values[l];
            if (w.wqkv != null) {
                ops.matmul(w.wqkv, s.xb, 0, s.qkv, 0, qDim + 2 * kvDim, dim);
                System.arraycopy(s.qkv, 0, s.q, 0, qDim);
                System.arraycopy(s.qkv, qDim, kc, cacheOff, kvDim);
                System.arraycopy(s.qkv, qDim + kvDim, vc, cacheOff, kvDim);
            } else {
                ops.matmul(w.wq, s.xb, 0, s.q, 0, qDim, dim);
                ops.matmul(w.wk, s.xb, 0, kc, cacheOff, kvDim, dim);
                ops.matmul(w.wv, s.xb, 0, vc, cacheOff, kvDim, dim);
            }
            if (w.bq != null) addBias(s.q, 0, w.bq, qDim);
            if (w.bk != null) addBias(kc, cacheOff, w.bk, kvDim);
            if (w.bv != null) addBias(vc, cacheOff, w.bv, kvDim);
            if (w.qNorm != null) {
                for (int h = 0; h < c.headCount(); h++) ops.rmsnorm(s.q, h * headDim, s.q, h * headDim, w.qNorm, headDim, eps);
                for (int h = 0; h < c.headCountKv(); h++) ops.rmsnorm(kc, cacheOff + h * headDim, kc, cacheOff + h * headDim, w.kNorm, headDim, eps);
            }
            boolean sliding = c.isSlidingLayer(l);
            float[] invFreq = sliding ? ropeInvFreqLocal : ropeInvFreq;
            for (int h = 0; h < c.headCount(); h++) rope(s.q, h * headDim, pos, invFreq);
            for (int h = 0; h < c.headCountKv(); h++) rope(kc, cacheOff + h * headDim, pos, invFreq);

            int first = sliding ? Math.max(0, pos - c.slidingWindow() + 1) : 0;
            attention(s, l, s.q, 0, s.xb, 0, pos, first, groups);

            ops.matmul(w.wo, s.xb, 0, s.xb2, 0, dim, qDim);
            if (w.attnPostNorm != null) ops.rmsnorm(s.xb2, 0, s.xb2, 0, w.attnPostNorm, dim, eps);
            for (int i = 0; i < dim; i++) s.x[i] += s.xb2[i];

            // gated feed-forward: SwiGLU, or GeGLU for Gemma
            ops.rmsnorm(s.xb, 0, s.x, 0, w.ffnNorm, dim, eps);
            float[] gate;
            float[] up;
            int upOff;
            if (w.wGate != null) {
                ops.matmul(w.wGate, s.xb, 0, s.hb, 0, ff, dim);
                ops.matmul(w.wUp, s.xb, 0, s.hb2, 0, ff, dim);
                gate = s.hb;
                up = s.hb2;
                upOff = 0;
            } else {
                ops.matmul(w.wUp, s.xb, 0, s.hb, 0, 2 * ff, dim); // rows [0, ff) gate, [ff, 2ff) up
                gate = s.hb;
                up = s.hb;
                upOff = ff;
            }
            if (config.arch().gemma) {
                for (int i = 0; i < ff; i++) gate[i] = gelu(gate[i]) * up[upOff + i];
            } else {
                VectorMath.siluMul(gate, 0, up, upOff, ff);
            }
            ops.matmul(w.wDown, gate, 0, s.xb2, 0, dim, ff);
            if (w.ffnPostNorm != null) ops.rmsnorm(s.xb2, 0, s.xb2, 0, w.ffnPostNorm, dim, eps);
            for (int i = 0; i < dim; i++) s.x[i] += s.xb2[i];
        }

        s.position = pos + 1;
        finishLogits(s);
        return s.logits;
    }

    /**
     * A sentence embedding from the model itself: the final-normed hidden state averaged over all positions, scaled
     * to unit length (what llama.cpp's mean pooling gives). Runs on a private KV cache.
     */
    public float[] embed(int[] tokens) {
        if (tokens.length == 0) throw new IllegalArgumentException("nothing to embed");
        InferenceState s = newState(tokens.length);
        int dim = config.embeddingLength();
        double[] sum = new double[dim];
        for (int t : tokens) {
            forward(s, t);
            for (int i = 0; i < dim; i++) sum[i] += s.x[i]; // s.x holds the final-normed hidden state
        }
        double norm = 0;
        for (double v : sum) norm += v * v;
        norm = Math.sqrt(norm);
        float[] e = new float[dim];
        for (int i = 0; i < dim; i++) e[i] = (float) (norm > 0 ? sum[i] / norm : 0);
        return e;
    }

    /** Final norm and output projection of the residual stream in {@code s.x}, into {@code s.logits}. */
    private void finishLogits(InferenceState s) {
        ModelConfig c = config;
        int dim = c.embeddingLength();
        ops.rmsnorm(s.x, 0, s.x, 0, outputNorm, dim, c.rmsEps());
        ops.matmul(output, s.x, 0, s.logits, 0, c.vocabularySize(), dim);
        finishSoftcapAndCheck(s);
    }

    private void finishSoftcapAndCheck(InferenceState s) {
        ModelConfig c = config;
        if (c.finalSoftcap() > 0f) {
            float cap = c.finalSoftcap();
            for (int i = 0; i < s.logits.length; i++) s.logits[i] = (float) Math.tanh(s.logits[i] / cap) * cap;
        }
        for (float v : s.logits) {
            if (!Float.isFinite(v)) throw nonFiniteWeights();
        }
    }

    /**
     * Logits came out NaN or infinite: some tensor holds non-finite values (a corrupt or hostile file, e.g. NaN
     * block scales). Find it, so the error names it. Only runs on this error path.
     */
    private ModelFormatException nonFiniteWeights() {
        float[] row = new float[0];
        for (GGUFTensorInfo t : gguf.tensors().values()) {
            FloatTensor ft;
            try {
                ft = FloatTensor.of(t.type(), gguf.tensorData(t), t.elements());
            } catch (RuntimeException e) {
                continue;
            }
            int cols = (int) t.rowLength();
            if (row.length < cols) row = new float[cols];
            for (long r = 0; r < t.rows(); r++) {
                ft.copyTo(r * cols, row, 0, cols);
                for (int i = 0; i < cols; i++) {
                    if (!Float.isFinite(row[i])) {
                        return new ModelFormatException(name + ": tensor '" + t.name() + "' holds a non-finite value (NaN or infinity) in row " + r
                                + ", e.g. a corrupt quantization scale");
                    }
                }
            }
        }
        return new ModelFormatException(name + ": the model produced non-finite logits (activations overflowed)");
    }

    /**
     * Scaled dot-product attention of every query head (in {@code q} from {@code qo}) over positions [first, pos] of
     * its KV head, a KV head's group of query heads at a time; the heads' outputs go to {@code out} from {@code oo}.
     */
    private void attention(InferenceState s, int layer, float[] q, int qo, float[] out, int oo, int pos, int first, int groups) {
        int headDim = config.headDim();
        for (int g = 0; g < config.headCountKv(); g++) {
            int h = g * groups;
            GroupedAttention.attend(ops, s.pool.keys[layer], s.pool.values[layer], s.table, g * headDim, q, qo + h * headDim,
                    out, oo + h * headDim, groups, headDim, first, pos, config.attentionScale(), config.attnSoftcap(),
                    s.att, h * s.contextLength, s.contextLength, rowScratch.get());
        }
    }

    /** Scratch for attention scores on whichever thread runs a KV head's group: a context's worth per query head. */
    private final ThreadLocal<float[]> scoreScratch;
    /** Scratch for the KV rows' offsets of the positions one attention reads, made once per thread. */
    private final ThreadLocal<int[]> rowScratch;

    /** The attention of a batched step over (token, KV head) pairs; index i is KV head i / total of token i % total. */
    private final class AttentionJob implements dev.enclave.runtime.backend.RangeJob {
        InferenceState[] states;
        InferenceState.Batch b;
        int layer;
        int total;
        boolean sliding;
        int groups;
        int xbW;

        void set(InferenceState[] states, InferenceState.Batch b, int layer, int total, boolean sliding, int groups, int xbW) {
            this.states = states;
            this.b = b;
            this.layer = layer;
            this.total = total;
            this.sliding = sliding;
            this.groups = groups;
            this.xbW = xbW;
        }

        @Override
        public void run(int from, int to) {
            float[] scratch = scoreScratch.get();
            int[] rows = rowScratch.get();
            int qDim = config.qDim();
            int headDim = config.headDim();
            int stride = config.contextLength();
            for (int i = from; i < to; i++) {
                int j = i % total;
                int g = i / total;
                int h = g * groups;
                InferenceState st = states[b.owner[j]];
                int pos = b.pos[j];
                int first = sliding ? Math.max(0, pos - config.slidingWindow() + 1) : 0;
                GroupedAttention.attend(ops, st.pool.keys[layer], st.pool.values[layer], st.table, g * headDim, b.q,
                        j * qDim + h * headDim, b.xb, j * xbW + h * headDim, groups, headDim, first, pos,
                        config.attentionScale(), config.attnSoftcap(), scratch, 0, stride, rows);
            }
        }
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private static void addBias(float[] v, int off, FloatTensor bias, int n) {
        for (int i = 0; i < n; i++) v[off + i] += bias.getFloat(i);
    }

    /** GELU, tanh approximation (as ggml). */
    static float gelu(float x) {
        return (float) (0.5 * x * (1.0 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
    }

    /** Rotary position embedding of one head in place, in the architecture's pairing style. */
    private void rope(float[] v, int off, int pos, float[] invFreq) {
        int half = config.ropeDimensions() / 2;
        boolean neox = config.arch().rope == Architecture.RopeStyle.NEOX;
        for (int i = 0; i < half; i++) {
            double theta = pos * (double) invFreq[i];
            float cos = (float) Math.cos(theta);
            float sin = (float) Math.sin(theta);
            int i0 = neox ? off + i : off + 2 * i;
            int i1 = neox ? off + i + half : off + 2 * i + 1;
            float a = v[i0];
            float b = v[i1];
            v[i0] = a * cos - b * sin;
            v[i1] = a * sin + b * cos;
        }
    }

    @Override
    public void close() {
        Thread writer = cacheWriter;
        if (writer != null) {
            try {
                writer.join(); // it reads the repacked memory this closes
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        repackArena.close();
        gguf.close();
    }
}
