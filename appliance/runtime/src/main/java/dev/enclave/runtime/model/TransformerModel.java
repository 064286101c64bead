package dev.enclave.runtime.model;

import dev.enclave.runtime.ModelFormatException;
import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.Backend;
import dev.enclave.runtime.backend.Backends;
import dev.enclave.runtime.backend.DeviceBuffer;
import dev.enclave.runtime.backend.KvPlan;
import dev.enclave.runtime.backend.KvStorage;
import dev.enclave.runtime.backend.Op;
import dev.enclave.runtime.backend.Placement;
import dev.enclave.runtime.backend.StepBatch;
import dev.enclave.runtime.backend.Weight;
import dev.enclave.runtime.backend.WeightPreparer;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.kv.KvPool;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tokenizer.MergeTableCache;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * One forward pass for the decoder-only families in {@link Architecture}: token embedding, then per block
 * RMSNorm, attention with rotary positions and grouped KV heads over the sequences' paged KV cache, RMSNorm and a
 * gated feed-forward; a final RMSNorm and the output projection. Every operation is a {@link Backend} operation on
 * memory the backend owns; each layer runs on the first backend of the order that supports all its operations and
 * weight types (the rest of the order takes the others: a split moves the hidden state once between backends).
 * Weights stay in the memory-mapped file in whatever ggml type each tensor was stored (files mix types), or in the
 * form their backend prepared at load.
 */
public final class TransformerModel implements AutoCloseable {

    private final String name;
    private final GGUFFile gguf;
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final RuntimeOptions options;

    /** The backend of the embedding lookup, of each layer, and of the final norm and output projection. */
    private final Backend embedBackend;
    private final Backend outputBackend;
    private final Placement placement;
    /** Each backend's preparation of this model's weights, which owns their memory. */
    private final Map<Backend, WeightPreparer> preparers = new IdentityHashMap<>();

    private final Weight tokenEmbedding;
    private final Weight outputNorm;
    private final Weight output;
    private final Layer[] layers;
    /** Rotary inverse frequencies per pair index (global and local layers), rope_freqs already applied. */
    private final float[] ropeInvFreq;
    private final float[] ropeInvFreqLocal;
    private final float embeddingScale;

    /** One block's weights, prepared by the backend that runs it; absent optional tensors are null. */
    private record Layer(Backend backend, Weight attnNorm, Weight wq, Weight wk, Weight wv, Weight wqkv,
                         Weight bq, Weight bk, Weight bv, Weight qNorm, Weight kNorm,
                         Weight wo, Weight attnPostNorm, Weight ffnNorm, Weight wGate,
                         Weight wUp, Weight wDown, Weight ffnPostNorm) {
    }

    /** Per layer, q, k and v (unfused), and gate and up, as the shared-input products' arguments (made once). */
    private final Weight[][] qkvShared, gateUpShared;
    private final int[] qkvRows, gateUpRows;

    private TransformerModel(String name, GGUFFile gguf, Path file, RuntimeOptions options, List<Backend> order) {
        this.name = name;
        this.gguf = gguf;
        this.options = options;
        this.config = ModelConfig.from(gguf);
        ModelConfig c = config;
        Architecture arch = c.arch();
        int dim = c.embeddingLength();
        int ff = c.feedForwardLength();
        options.kvType().check(c.blockCount(), c.headDim());
        // check every tensor's presence and shape before any backend prepares (and repacks) anything
        List<LayerTensors> specs = new ArrayList<>();
        for (int l = 0; l < c.blockCount(); l++) specs.add(layerTensors(l));
        List<Backend> perLayer = new ArrayList<>();
        for (LayerTensors s : specs) perLayer.add(choose(order, s.types()));
        embedBackend = chooseFor(order, perLayer.isEmpty() ? null : perLayer.getFirst(), Op.EMBED, typeOf("token_embd.weight"));
        String outName = gguf.tensor("output.weight") != null ? "output.weight" : "token_embd.weight";
        outputBackend = chooseFor(order, perLayer.isEmpty() ? embedBackend : perLayer.getLast(), Op.MATMUL, typeOf(outName));
        placement = Placement.of(perLayer);

        // the vocabulary is read on a thread of its own while the weights are prepared: with the repacked weights
        // mapped from their cache, building Llama 3's tokenizer was the longest step of a load
        java.util.concurrent.FutureTask<Tokenizer> tokenizerTask = new java.util.concurrent.FutureTask<>(
                () -> Tokenizer.fromGGUF(gguf, MergeTableCache.of(options.repackCacheDir(), file)));
        Thread.ofPlatform().daemon().name("enclave-tokenizer").start(tokenizerTask);
        try {
            preparer(embedBackend, file); // the CPU's starts its kernels' warm-up here
            tokenEmbedding = weight(embedBackend, file, "token_embd.weight", dim, c.vocabularySize());
            outputNorm = weight(outputBackend, file, "output_norm.weight", dim);
            // Tied embeddings: without output.weight the embedding matrix doubles as the output projection.
            output = outName.equals("output.weight") ? weight(outputBackend, file, "output.weight", dim, c.vocabularySize())
                    : outputBackend == embedBackend ? tokenEmbedding : weight(outputBackend, file, "token_embd.weight", dim, c.vocabularySize());
            layers = new Layer[c.blockCount()];
            for (int l = 0; l < layers.length; l++) {
                Backend b = perLayer.get(l);
                String p = "blk." + l + ".";
                boolean fusedQkv = gguf.tensor(p + "attn_qkv.weight") != null;
                boolean fusedGateUp = gguf.tensor(p + "ffn_gate.weight") == null;
                layers[l] = new Layer(b,
                        weight(b, file, p + "attn_norm.weight", dim),
                        fusedQkv ? null : weight(b, file, p + "attn_q.weight", dim, c.qDim()),
                        fusedQkv ? null : weight(b, file, p + "attn_k.weight", dim, c.kvDim()),
                        fusedQkv ? null : weight(b, file, p + "attn_v.weight", dim, c.kvDim()),
                        fusedQkv ? weight(b, file, p + "attn_qkv.weight", dim, c.qDim() + 2L * c.kvDim()) : null,
                        optionalWeight(b, file, p + "attn_q.bias", c.qDim()),
                        optionalWeight(b, file, p + "attn_k.bias", c.kvDim()),
                        optionalWeight(b, file, p + "attn_v.bias", c.kvDim()),
                        arch.qkNorm ? weight(b, file, p + "attn_q_norm.weight", c.headDim()) : null,
                        arch.qkNorm ? weight(b, file, p + "attn_k_norm.weight", c.headDim()) : null,
                        weight(b, file, p + "attn_output.weight", c.qDim(), dim),
                        arch.gemma ? weight(b, file, p + "post_attention_norm.weight", dim) : null,
                        weight(b, file, p + "ffn_norm.weight", dim),
                        fusedGateUp ? null : weight(b, file, p + "ffn_gate.weight", dim, ff),
                        fusedGateUp ? weight(b, file, p + "ffn_up.weight", dim, 2L * ff) : weight(b, file, p + "ffn_up.weight", dim, ff),
                        weight(b, file, p + "ffn_down.weight", ff, dim),
                        arch.gemma ? weight(b, file, p + "post_ffw_norm.weight", dim) : null);
            }
            qkvShared = new Weight[layers.length][];
            gateUpShared = new Weight[layers.length][];
            for (int l = 0; l < layers.length; l++) {
                Layer w = layers[l];
                if (w.wqkv == null) qkvShared[l] = new Weight[] {w.wq, w.wk, w.wv};
                if (w.wGate != null) gateUpShared[l] = new Weight[] {w.wGate, w.wUp};
            }
            qkvRows = new int[] {c.qDim(), c.kvDim(), c.kvDim()};
            gateUpRows = new int[] {ff, ff};
            FloatTensor ropeFreqs = gguf.tensor("rope_freqs.weight") == null ? null : tensor("rope_freqs.weight", c.ropeDimensions() / 2);
            ropeInvFreq = invFreq(c.ropeFreqBase(), ropeFreqs);
            ropeInvFreqLocal = c.ropeFreqBaseLocal() == c.ropeFreqBase() ? ropeInvFreq : invFreq(c.ropeFreqBaseLocal(), null);
            embeddingScale = arch.gemma ? (float) Math.sqrt(dim) : 1f;
            for (WeightPreparer w : preparers.values()) w.finish();
            try {
                this.tokenizer = tokenizerTask.get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof RuntimeException r) throw r;
                if (e.getCause() instanceof Error err) throw err;
                throw new IllegalStateException(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while reading the tokenizer", e);
            }
            gguf.forgetArray("tokenizer.ggml.merges"); // the tokenizer keeps its own compact merge table
            gguf.releaseMetadataPages();
            if (tokenizer.vocabularySize() != c.vocabularySize()) {
                throw new ModelFormatException("tokenizer has " + tokenizer.vocabularySize() + " tokens, model " + c.vocabularySize());
            }
        } catch (RuntimeException e) {
            preparers.values().forEach(WeightPreparer::close);
            throw e;
        }
    }

    /** A layer's tensors by name with their expected shapes, checked against the file. */
    private record LayerTensors(List<GGMLType> types) {
    }

    private LayerTensors layerTensors(int l) {
        ModelConfig c = config;
        Architecture arch = c.arch();
        int dim = c.embeddingLength();
        int ff = c.feedForwardLength();
        String p = "blk." + l + ".";
        List<GGMLType> types = new ArrayList<>();
        boolean fusedQkv = gguf.tensor(p + "attn_qkv.weight") != null;
        boolean fusedGateUp = gguf.tensor(p + "ffn_gate.weight") == null;
        check(types, p + "attn_norm.weight", dim);
        if (fusedQkv) {
            check(types, p + "attn_qkv.weight", dim, c.qDim() + 2L * c.kvDim());
        } else {
            check(types, p + "attn_q.weight", dim, c.qDim());
            check(types, p + "attn_k.weight", dim, c.kvDim());
            check(types, p + "attn_v.weight", dim, c.kvDim());
        }
        if (arch.qkvBias) {
            check(types, p + "attn_q.bias", c.qDim());
            check(types, p + "attn_k.bias", c.kvDim());
            check(types, p + "attn_v.bias", c.kvDim());
        }
        if (arch.qkNorm) {
            check(types, p + "attn_q_norm.weight", c.headDim());
            check(types, p + "attn_k_norm.weight", c.headDim());
        }
        check(types, p + "attn_output.weight", c.qDim(), dim);
        if (arch.gemma) check(types, p + "post_attention_norm.weight", dim);
        check(types, p + "ffn_norm.weight", dim);
        if (fusedGateUp) {
            check(types, p + "ffn_up.weight", dim, 2L * ff);
        } else {
            check(types, p + "ffn_gate.weight", dim, ff);
            check(types, p + "ffn_up.weight", dim, ff);
        }
        check(types, p + "ffn_down.weight", ff, dim);
        if (arch.gemma) check(types, p + "post_ffw_norm.weight", dim);
        return new LayerTensors(types);
    }

    private void check(List<GGMLType> types, String name, long... dims) {
        types.add(tensor(name, dims).type());
    }

    private GGMLType typeOf(String name) {
        GGUFTensorInfo t = gguf.tensor(name);
        if (t == null) throw new ModelFormatException("model is missing tensor '" + name + "'");
        return t.type();
    }

    /** The layer ops: every backend runs these on the layer's weight types, or the layer goes to the next one. */
    private static final Op[] LAYER_OPS = {Op.RMSNORM, Op.MATMUL, Op.ADD_BIAS, Op.ROPE, Op.KV_WRITE, Op.ATTENTION,
            Op.GATED_ACTIVATION, Op.ADD};

    private static Backend choose(List<Backend> order, List<GGMLType> types) {
        for (Backend b : order) {
            boolean all = true;
            for (Op op : LAYER_OPS) {
                if (!b.supportsOp(op, null)) all = false;
            }
            for (GGMLType t : types) {
                if (!b.supportsOp(Op.MATMUL, t)) all = false;
            }
            if (all) return b;
        }
        throw new ModelFormatException("no backend runs a layer with tensors of types " + types);
    }

    private static Backend chooseFor(List<Backend> order, Backend preferred, Op op, GGMLType type) {
        if (preferred != null && preferred.supportsOp(op, type)) return preferred;
        for (Backend b : order) if (b.supportsOp(op, type)) return b;
        throw new ModelFormatException("no backend runs " + op + " on " + type);
    }

    private WeightPreparer preparer(Backend b, Path file) {
        return preparers.computeIfAbsent(b, k -> k.weights(gguf, file, options));
    }

    private Weight weight(Backend b, Path file, String name, long... dims) {
        FloatTensor t = tensor(name, dims);
        return preparer(b, file).prepare(name, t, dims.length == 2 ? (int) dims[1] : 1, (int) dims[0]);
    }

    private Weight optionalWeight(Backend b, Path file, String name, long... dims) {
        return gguf.tensor(name) == null ? null : weight(b, file, name, dims);
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

    /**
     * Waits until every kernel this model runs is compiled, the batch kernels included (they finish in the background
     * after loading): benchmarks measure after it.
     */
    public void awaitWarmup() throws InterruptedException {
        for (WeightPreparer w : preparers.values()) w.awaitWarmup();
    }

    /** Memory-maps a GGUF model file and prepares it for inference with the default options. */
    public static TransformerModel load(Path path) throws IOException {
        return load(path, RuntimeOptions.defaults());
    }

    /** Memory-maps a GGUF model file and prepares it for inference on the backends {@code options} select. */
    public static TransformerModel load(Path path, RuntimeOptions options) throws IOException {
        return load(path, GGUFFile.open(path), options);
    }

    /** Memory-maps a GGUF model file and prepares it for these backends, tried in this order. */
    public static TransformerModel load(Path path, RuntimeOptions options, List<Backend> order) throws IOException {
        return load(path, GGUFFile.open(path), options, order);
    }

    /**
     * Prepares the model of {@code path}, already parsed as {@code gguf} (a caller may do other start-up work while
     * the file is parsed); the model closes the file when closed, or at once if it fails.
     */
    public static TransformerModel load(Path path, GGUFFile gguf, RuntimeOptions options) {
        List<Backend> order;
        try {
            order = Backends.order(options);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
        return load(path, gguf, options, order);
    }

    private static TransformerModel load(Path path, GGUFFile gguf, RuntimeOptions options, List<Backend> order) {
        try {
            return new TransformerModel(modelName(path.getFileName().toString()), gguf, path, options, order);
        } catch (ModelFormatException e) {
            gguf.close();
            throw new ModelFormatException(path.getFileName() + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    /** Wraps an already-parsed GGUF file with the default options; the model closes it when closed. */
    public static TransformerModel load(String name, GGUFFile gguf) {
        return load(name, gguf, RuntimeOptions.defaults());
    }

    /** Wraps an already-parsed GGUF file (no file on disk: nothing is cached); the model closes it when closed. */
    public static TransformerModel load(String name, GGUFFile gguf, RuntimeOptions options) {
        try {
            return new TransformerModel(name, gguf, null, options, Backends.order(options));
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    static String modelName(String fileName) {
        return fileName.endsWith(".gguf") ? fileName.substring(0, fileName.length() - 5) : fileName;
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
        return FloatTensor.of(t.type(), gguf.tensorData(t), t.elements());
    }

    public String name() {
        return name;
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

    public RuntimeOptions options() {
        return options;
    }

    /** Where the layers run. */
    public Placement placement() {
        return placement;
    }

    /** The weight preparation of {@code backend} for this model, or null (for tests). */
    public WeightPreparer preparer(Backend backend) {
        return preparers.get(backend);
    }

    /** A fresh sequence state with a private KV cache for {@code contextLength} positions (capped at the model's). */
    public InferenceState newState(int contextLength) {
        return newState(contextLength, options.kvType());
    }

    /** As {@link #newState(int)}, its KV cache stored as {@code plan} says (calibration tries plans on one model). */
    public InferenceState newState(int contextLength, KvPlan plan) {
        plan.check(config.blockCount(), config.headDim());
        int n = Math.min(contextLength, config.contextLength());
        if (n <= 0) {
            throw new IllegalArgumentException("context length must be positive");
        }
        int blocks = (n + InferenceState.PRIVATE_BLOCK - 1) / InferenceState.PRIVATE_BLOCK;
        long bytes = (long) blocks * InferenceState.PRIVATE_BLOCK * plan.bytesPerPosition(config.blockCount(), config.kvDim(), config.headDim());
        if ((long) blocks * InferenceState.PRIVATE_BLOCK * config.kvDim() > Integer.MAX_VALUE - 64 || bytes > Runtime.getRuntime().maxMemory() / 10 * 8) {
            throw new IllegalStateException("a KV cache for " + n + " positions needs " + (bytes >> 20)
                    + " MiB, more than this JVM can hold (max heap " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB); ask for a shorter context");
        }
        return new InferenceState(config, n, newKvPool(InferenceState.PRIVATE_BLOCK, blocks, plan));
    }

    /** A sequence whose KV cache lives in a shared pool (continuous batching, prefix sharing). */
    public InferenceState newState(int contextLength, KvPool pool) {
        int n = Math.min(contextLength, config.contextLength());
        if (n <= 0) throw new IllegalArgumentException("context length must be positive");
        if (pool.kvDim != config.kvDim() || pool.layerCount() != config.blockCount()) {
            throw new IllegalArgumentException("KV pool shape does not fit this model");
        }
        return new InferenceState(config, n, pool);
    }

    /** A KV pool for this model sized to a memory budget, each layer's share on the backend that runs the layer. */
    public KvPool newKvPool(int blockSize, long bytes) {
        return newKvPool(blockSize, blocksForBudget(blockSize, bytes), options.kvType());
    }

    private KvPool newKvPool(int blockSize, int blocks, KvPlan plan) {
        checkCodes(plan);
        KvPool.checkSize(config.kvDim(), blockSize, blocks);
        KvStorage[] storage = new KvStorage[layers.length];
        // a server's pool is its start's last serial step (a 1B model's default budget: a gigabyte of arrays the JVM
        // zeroes): layers kept in host memory are allocated in parallel, by this thread and the common pool's
        boolean host = Runtime.getRuntime().availableProcessors() > 1
                && Arrays.stream(layers).allMatch(w -> w.backend instanceof dev.enclave.runtime.backend.HostBackend);
        java.util.stream.IntStream each = java.util.stream.IntStream.range(0, layers.length);
        (host ? each.parallel() : each).forEach(l -> storage[l] = allocateKv(l, blockSize, blocks, plan));
        return new KvPool(List.of(storage), config.kvDim(), blockSize, blocks);
    }

    private KvStorage allocateKv(int l, int blockSize, int blocks, KvPlan plan) {
        return layers[l].backend.allocateKv(config.kvDim(), config.headDim(), blocks * blockSize, plan.type(l));
    }

    /** Refuses a transform-coded layer whose code was made for another model (shape or RoPE). */
    private void checkCodes(KvPlan plan) {
        for (int l = 0; l < config.blockCount(); l++) {
            dev.enclave.runtime.backend.KvCode.Layer code = plan.type(l).code();
            if (code == null) continue;
            if (code.heads() != config.headCountKv() || code.owner().headDim() != config.headDim()) {
                throw new IllegalArgumentException("KV code " + code.owner().label() + " is for another model's shape (" + code.heads()
                        + " KV heads of " + code.owner().headDim() + ")");
            }
            if (code.neox() != neoxRope() || !Arrays.equals(code.invFreq(), ropeInvFreq(l))) {
                throw new IllegalArgumentException("KV code " + code.owner().label() + " was calibrated for a model with another RoPE");
            }
        }
    }

    /** Layer {@code l}'s RoPE frequencies (the pairs turned), as {@link Backend#rope} takes them. */
    public float[] ropeInvFreq(int l) {
        return (config.isSlidingLayer(l) ? ropeInvFreqLocal : ropeInvFreq).clone();
    }

    /** Whether RoPE turns pairs (i, i + half) (NEOX) rather than (2i, 2i + 1). */
    public boolean neoxRope() {
        return config.arch().rope == Architecture.RopeStyle.NEOX;
    }

    /** What {@link #newKvPool} would allocate for this budget, in bytes, without allocating it. */
    public long newKvPoolBytes(int blockSize, long bytes) {
        return (long) blocksForBudget(blockSize, bytes) * blockSize * kvBytesPerToken();
    }

    /** Bytes one cached token takes in all layers (keys and values in this model's KV types, scales included). */
    public long kvBytesPerToken() {
        return options.kvType().bytesPerPosition(config.blockCount(), config.kvDim(), config.headDim());
    }

    private int blocksForBudget(int blockSize, long bytes) {
        long perBlock = (long) blockSize * kvBytesPerToken();
        int n = (int) Math.max(1, Math.min(Integer.MAX_VALUE, bytes / perBlock));
        return (int) Math.min(n, (Integer.MAX_VALUE - 64L) / ((long) blockSize * config.kvDim()));
    }

    /** The memory of steps of up to {@code tokens} tokens from {@code sequences} sequences (it grows if needed). */
    public Workspace newWorkspace(int tokens, int sequences) {
        return new Workspace(config, tokens, sequences);
    }

    /** Tokens per prompt-processing step: each weight row is decoded once per step and used for all of them. */
    static final int PREFILL_CHUNK = 64;

    /**
     * Runs {@code tokens} in order, appending them to the state's cache; returns the last position's logits. Long
     * prompts go {@link #PREFILL_CHUNK} tokens per step.
     */
    public float[] ingest(InferenceState s, int[] tokens) {
        ingest(s, tokens, null);
        return s.logits;
    }

    /**
     * Runs {@code tokens} in order, appending them to the state's cache, and writes every position's logits:
     * position k's at {@code out[k * vocab ..]} (what perplexity scores). The tokens go {@link #PREFILL_CHUNK} per
     * step, as {@link #ingest} runs them; the state's own logits are the last position's afterwards.
     */
    public void ingestAllLogits(InferenceState s, int[] tokens, float[] out) {
        int vocab = config.vocabularySize();
        if (out.length < (long) tokens.length * vocab) throw new IllegalArgumentException("room for " + out.length / vocab + " positions' logits, " + tokens.length + " tokens");
        ingest(s, tokens, out);
    }

    /** The prompt's steps; with {@code all}, every position's logits go there. */
    private void ingest(InferenceState s, int[] tokens, float[] all) {
        Workspace ws = workspaceOf(s);
        InferenceState[] one = {s};
        int[] from = new int[1];
        int[] count = new int[1];
        int[][] toks = {tokens};
        for (int i = 0; i < tokens.length; i += count[0]) {
            from[0] = i;
            count[0] = Math.min(PREFILL_CHUNK, tokens.length - i);
            forward(ws, one, toks, from, count, all, all == null ? 0 : i * config.vocabularySize());
        }
    }

    /**
     * A context shift for a sequence that outgrew its context (StreamingLLM's attention sinks and recent window, as
     * llama.cpp's context shift does it): positions [keep, keep + discard) are dropped, the later ones move down by
     * {@code discard}, their keys turned by RoPE for their new positions (values do not depend on position). Both
     * counts are whole KV blocks. Blocks another sequence or the prefix cache also holds are never rewritten: those
     * that move are copied first, those dropped only lose this sequence's reference. The state's logits are kept.
     *
     * @return false (nothing changed) when the pool has no block left for those copies
     * @throws UnsupportedOperationException when a layer's backend cannot rewrite its cache in place (nothing changed)
     */
    public boolean shiftContext(InferenceState s, int keep, int discard) {
        int bs = s.pool.blockSize;
        if (keep < 0 || discard <= 0 || keep % bs != 0 || discard % bs != 0 || keep + discard > s.position) {
            throw new IllegalArgumentException("a shift drops whole blocks of " + bs + " after the kept ones: keep " + keep
                    + ", drop " + discard + " of " + s.position + " positions");
        }
        int[] blocks = new int[discard / bs];
        for (int i = 0; i < blocks.length; i++) blocks[i] = keep / bs + i;
        return dropBlocks(s, blocks);
    }

    /**
     * A context shift that drops the given blocks of the sequence (indices into its block table, ascending, whole
     * blocks before its last position), wherever they are: each later block moves down by the positions dropped
     * before it, its keys turned by RoPE for its new positions. As {@link #shiftContext(InferenceState, int, int)}
     * otherwise (shared blocks copied before they are rewritten; false when the pool has no block for that).
     */
    public boolean dropBlocks(InferenceState s, int[] blocks) {
        int bs = s.pool.blockSize;
        for (int i = 0; i < blocks.length; i++) {
            if (blocks[i] < 0 || (blocks[i] + 1) * bs > s.position || i > 0 && blocks[i] <= blocks[i - 1]) {
                throw new IllegalArgumentException("blocks to drop must be whole, ascending and before position " + s.position
                        + ": " + java.util.Arrays.toString(blocks));
            }
        }
        if (blocks.length == 0) return false;
        for (Layer w : layers) {
            if (!w.backend.canShiftKeys()) throw new UnsupportedOperationException("the " + w.backend.name() + " backend cannot move its KV cache");
        }
        int firstMoved = blocks[0] * bs;
        if (!s.table.makeWritable(firstMoved, s.position)) return false;
        s.table.clearRecent(); // the recent window's keys are at the old positions
        ModelConfig c = config;
        boolean neox = c.arch().rope == Architecture.RopeStyle.NEOX;
        int[] slots = new int[s.position - firstMoved];
        // the blocks between two dropped ones (or after the last) all move down by the positions dropped before them
        for (int d = 0; d < blocks.length; d++) {
            int from = (blocks[d] + 1) * bs, to = d + 1 < blocks.length ? blocks[d + 1] * bs : s.position;
            int moved = to - from;
            if (moved == 0) continue;
            for (int i = 0; i < moved; i++) slots[i] = s.table.slot(from + i);
            for (int l = 0; l < layers.length; l++) {
                float[] invFreq = c.isSlidingLayer(l) ? ropeInvFreqLocal : ropeInvFreq;
                layers[l].backend.shiftKeys(s.pool.layer(l), slots, moved, c.headCountKv(), c.headDim(), invFreq, neox, -(d + 1) * bs);
            }
        }
        for (int d = blocks.length - 1; d >= 0; d--) s.dropPositions(blocks[d] * bs, bs);
        return true;
    }

    /**
     * Makes every layer's KV storage in {@code pool} add up the attention its slots receive (for
     * {@link #heavyHitterBlocks}); false, and nothing tracked, where a layer's backend cannot.
     */
    public boolean trackAttention(KvPool pool) {
        for (int l = 0; l < layers.length; l++) {
            if (!layers[l].backend.trackAttention(pool.layer(l))) return false;
        }
        return true;
    }

    /**
     * The {@code count} blocks of a full context to drop by heavy-hitter eviction (H2O): among the blocks after the
     * first {@code keep} positions and before the last {@code recent}, held by this sequence alone (a block shared with
     * another sequence or the prefix cache is never chosen), those whose positions received the least attention per
     * later query, summed over layers and heads; ascending. Null when attention is not tracked or fewer blocks qualify.
     */
    public int[] heavyHitterBlocks(InferenceState s, int keep, int recent, int count) {
        int bs = s.pool.blockSize;
        int first = (keep + bs - 1) / bs, end = Math.max(first, (s.position - recent) / bs);
        int n = 0;
        int[] candidates = new int[Math.max(0, end - first)];
        double[] score = new double[candidates.length];
        for (int b = first; b < end; b++) {
            if (s.pool.refCount(s.table.block(b)) != 1) continue;
            double sum = 0;
            for (int l = 0; l < layers.length; l++) sum += s.pool.layer(l).attentionReceived(s.table.slot(b * bs), bs);
            if (Double.isNaN(sum)) return null;
            // a position has been attended by every later query: a mean per query, or old blocks would always win
            int queries = Math.max(1, s.position - b * bs - bs / 2);
            candidates[n] = b;
            score[n++] = sum / queries;
        }
        if (n < count) return null;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (x, y) -> score[x] != score[y] ? Double.compare(score[x], score[y]) : Integer.compare(candidates[x], candidates[y]));
        int[] chosen = new int[count];
        for (int i = 0; i < count; i++) chosen[i] = candidates[order[i]];
        java.util.Arrays.sort(chosen);
        return chosen;
    }

    /** Runs one token at the state's next position and returns the logits (a buffer reused by the next call). */
    public float[] forward(InferenceState s, int token) {
        Workspace ws = workspaceOf(s);
        ws.single[0] = s;
        ws.singleToken[0][0] = token;
        forward(ws, ws.single, ws.singleToken, ws.zero, ws.one);
        ws.single[0] = null;
        return s.logits;
    }

    private Workspace workspaceOf(InferenceState s) {
        if (s.workspace == null) s.workspace = newWorkspace(PREFILL_CHUNK, 1);
        return s.workspace;
    }

    /**
     * One step over several sequences at once (continuous batching): sequence i contributes
     * {@code tokens[i][from[i] .. from[i] + count[i])} at its next positions (one token while decoding, a chunk
     * while reading its prompt); all share one KV pool. Every weight row is read once for all tokens of the step.
     * Afterwards each state holds the logits of its last token.
     */
    public void forward(Workspace ws, InferenceState[] states, int[][] tokens, int[] from, int[] count) {
        forward(ws, states, tokens, from, count, null, 0);
    }

    /**
     * As above; sequence i also gets the logits of its last {@code logitRows[i]} tokens (1 or more) in
     * {@code rowLogits[i]}, row after row (a speculative step checks each guess against its position's logits).
     */
    public void forward(Workspace ws, InferenceState[] states, int[][] tokens, int[] from, int[] count, int[] logitRows,
                        float[][] rowLogits) {
        int rows = 0;
        for (int i = 0; i < states.length; i++) {
            if (logitRows[i] < 1 || logitRows[i] > count[i]) throw new IllegalArgumentException("logit rows " + logitRows[i] + " of " + count[i] + " tokens");
            if (logitRows[i] > 1 && rowLogits[i].length < logitRows[i] * config.vocabularySize()) throw new IllegalArgumentException("no room for the rows' logits");
            rows += logitRows[i];
        }
        if (rows == states.length) {
            forward(ws, states, tokens, from, count, null, 0);
            return;
        }
        ws.rowsWanted(logitRows, rows);
        try {
            forward(ws, states, tokens, from, count, null, 0);
            int vocab = config.vocabularySize();
            for (int i = 0, r = 0; i < states.length; r += logitRows[i], i++) {
                if (logitRows[i] > 1) System.arraycopy(ws.rowLogits, r * vocab, rowLogits[i], 0, logitRows[i] * vocab);
            }
        } finally {
            ws.rowsWanted(null, 0);
        }
    }

    /** As above; with {@code allLogits} (one sequence), every token's logits go there from {@code allOff}. */
    private void forward(Workspace ws, InferenceState[] states, int[][] tokens, int[] from, int[] count, float[] allLogits, int allOff) {
        ModelConfig c = config;
        int total = 0;
        KvPool pool = states[0].pool;
        for (int i = 0; i < states.length; i++) {
            InferenceState st = states[i];
            if (st.pool != pool) throw new IllegalArgumentException("the sequences of a step share one KV pool");
            if (count[i] <= 0) throw new IllegalArgumentException("a sequence of a step brings no token");
            if (st.position + count[i] > st.contextLength) {
                throw new IllegalStateException("context is full (" + st.contextLength + " positions)");
            }
            for (int k = 0; k < count[i]; k++) {
                int token = tokens[i][from[i] + k];
                if (token < 0 || token >= c.vocabularySize()) {
                    throw new IllegalArgumentException("token id " + token + " is outside the vocabulary [0, " + c.vocabularySize() + ")");
                }
            }
            if (!st.table.ensure(st.position + count[i])) {
                throw new IllegalStateException("the KV cache pool is exhausted");
            }
            total += count[i];
        }
        ws.ensure(total, states.length);
        StepBatch step = ws.step;
        step.tokens = total;
        step.sequences = states.length;
        for (int i = 0, j = 0; i < states.length; i++) {
            InferenceState st = states[i];
            step.tables[i] = st.table;
            for (int k = 0; k < count[i]; k++, j++) {
                step.token[j] = tokens[i][from[i] + k];
                step.sequence[j] = i;
                step.pos[j] = st.position + k;
                step.slot[j] = st.table.slot(st.position + k);
            }
            step.lastRow[i] = j - 1;
        }
        int dim = c.embeddingLength();

        Backend on = embedBackend;
        Workspace.Activations a = ws.on(on);
        on.embed(tokenEmbedding, step, a.x, dim, dim, embeddingScale);
        for (int l = 0; l < layers.length; l++) {
            Layer w = layers[l];
            if (w.backend != on) a = move(ws, on, on = w.backend, total);
            layer(w, l, a, pool.layer(l), step);
        }
        if (outputBackend != on) a = move(ws, on, on = outputBackend, total);

        int vocab = c.vocabularySize();
        if (allLogits != null) {
            // every position's logits (perplexity): the final norm and output projection of all the step's tokens
            a = ws.outputAll(on, total);
            on.rmsnorm(a.hiddenAll, 0, dim, a.x, 0, dim, outputNorm, total, 1, dim, c.rmsEps());
            on.matmul(output, a.hiddenAll, 0, dim, a.logitsAll, 0, vocab, vocab, dim, total);
            on.download(a.logitsAll, 0, allLogits, allOff, total * vocab);
            softcapAndCheck(allLogits, allOff, allOff + total * vocab);
            InferenceState st = states[0];
            st.position += count[0];
            System.arraycopy(allLogits, allOff + (total - 1) * vocab, st.logits, 0, vocab);
            step.tables[0] = null;
            return;
        }
        if (ws.wanted != null) {
            // a speculative step: the last rows of some sequences; each state still gets its last row's logits
            int rows = ws.wantedRows;
            int[] index = ws.rowIndex(rows);
            for (int i = 0, r = 0; i < states.length; i++) {
                for (int k = ws.wanted[i] - 1; k >= 0; k--) index[r++] = step.lastRow[i] - k;
            }
            a = ws.outputAll(on, rows);
            on.gatherRows(a.x, dim, index, rows, a.hiddenAll, dim, dim);
            on.rmsnorm(a.hiddenAll, 0, dim, a.hiddenAll, 0, dim, outputNorm, rows, 1, dim, c.rmsEps());
            on.matmul(output, a.hiddenAll, 0, dim, a.logitsAll, 0, vocab, vocab, dim, rows);
            float[] host = ws.rowLogits(rows * vocab);
            on.download(a.logitsAll, 0, host, 0, rows * vocab);
            softcapAndCheck(host, 0, rows * vocab);
            for (int i = 0, r = 0; i < states.length; i++) {
                r += ws.wanted[i];
                InferenceState st = states[i];
                st.position += count[i];
                System.arraycopy(host, (r - 1) * vocab, st.logits, 0, vocab);
            }
            for (int i = 0; i < states.length; i++) step.tables[i] = null;
            return;
        }
        // the final norm and output projection of each sequence's last token only
        int n = states.length;
        a = ws.output(on);
        on.gatherRows(a.x, dim, step.lastRow, n, a.hidden, dim, dim);
        on.rmsnorm(a.hidden, 0, dim, a.hidden, 0, dim, outputNorm, n, 1, dim, c.rmsEps());
        on.matmul(output, a.hidden, 0, dim, a.logits, 0, vocab, vocab, dim, n);
        for (int i = 0; i < n; i++) {
            InferenceState st = states[i];
            st.position += count[i];
            on.download(a.logits, i * vocab, st.logits, 0, vocab);
            if (st.keepHidden) on.download(a.hidden, i * dim, st.x, 0, dim);
            finishSoftcapAndCheck(st);
        }
        for (int i = 0; i < n; i++) step.tables[i] = null;
    }

    /** The hidden state of the step's tokens from one backend's memory to the next's (a split). */
    private Workspace.Activations move(Workspace ws, Backend from, Backend to, int tokens) {
        int floats = tokens * config.embeddingLength();
        float[] host = ws.transfer(floats);
        from.download(ws.on(from).x, 0, host, 0, floats);
        Workspace.Activations a = ws.on(to);
        to.upload(host, 0, a.x, 0, floats);
        return a;
    }

    private volatile AttentionTap tap;

    /** Shows every layer's pre-RoPE queries, keys and values to {@code t} (null: stop); calibration only. */
    public void tap(AttentionTap t) {
        this.tap = t;
    }

    private void observe(AttentionTap tapped, int l, Backend be, DeviceBuffer qb, int qo, int qs, DeviceBuffer kb, int ko, int ks,
                         DeviceBuffer vb, int vo, int vs, int n) {
        int qDim = config.qDim(), kvDim = config.kvDim();
        float[] q = new float[n * qDim], k = new float[n * kvDim], v = new float[n * kvDim];
        for (int t = 0; t < n; t++) {
            be.download(qb, qo + t * qs, q, t * qDim, qDim);
            be.download(kb, ko + t * ks, k, t * kvDim, kvDim);
            be.download(vb, vo + t * vs, v, t * kvDim, kvDim);
        }
        tapped.observe(l, q, k, v, n);
    }

    /** One transformer block over the step's tokens, on the layer's backend. */
    private void layer(Layer w, int l, Workspace.Activations a, KvStorage kv, StepBatch step) {
        ModelConfig c = config;
        Backend be = w.backend;
        int n = step.tokens;
        int dim = c.embeddingLength();
        int headDim = c.headDim();
        int kvDim = c.kvDim();
        int qDim = c.qDim();
        int ff = c.feedForwardLength();
        float eps = c.rmsEps();
        int xbW = Math.max(dim, qDim);

        // attention
        be.rmsnorm(a.xb, 0, xbW, a.x, 0, dim, w.attnNorm, n, 1, dim, eps);
        DeviceBuffer qb, kb, vb;
        int qo, ko, vo, qs, ks, vs;
        if (w.wqkv != null) {
            int fused = qDim + 2 * kvDim;
            be.matmul(w.wqkv, a.xb, 0, xbW, a.qkv, 0, fused, fused, dim, n);
            qb = kb = vb = a.qkv;
            qo = 0;
            ko = qDim;
            vo = qDim + kvDim;
            qs = ks = vs = fused;
        } else {
            be.matmulShared(qkvShared[l], qkvRows, a.xb, 0, xbW, a.qkvOut, dim, n);
            qb = a.q;
            kb = a.k;
            vb = a.v;
            qo = ko = vo = 0;
            qs = qDim;
            ks = vs = kvDim;
        }
        if (w.bq != null) be.addBias(qb, qo, qs, w.bq, qDim, n);
        if (w.bk != null) be.addBias(kb, ko, ks, w.bk, kvDim, n);
        if (w.bv != null) be.addBias(vb, vo, vs, w.bv, kvDim, n);
        if (w.qNorm != null) {
            be.rmsnorm(qb, qo, qs, qb, qo, qs, w.qNorm, n, c.headCount(), headDim, eps);
            be.rmsnorm(kb, ko, ks, kb, ko, ks, w.kNorm, n, c.headCountKv(), headDim, eps);
        }
        AttentionTap t = tap;
        if (t != null) observe(t, l, be, qb, qo, qs, kb, ko, ks, vb, vo, vs, n);
        boolean sliding = c.isSlidingLayer(l);
        float[] invFreq = sliding ? ropeInvFreqLocal : ropeInvFreq;
        boolean neox = c.arch().rope == Architecture.RopeStyle.NEOX;
        be.rope(qb, qo, qs, c.headCount(), headDim, step, invFreq, neox);
        be.rope(kb, ko, ks, c.headCountKv(), headDim, step, invFreq, neox);
        be.kvWrite(kv, kb, ko, ks, vb, vo, vs, kvDim, step);
        be.attention(kv, qb, qo, qs, a.xb, 0, xbW, step, c.headCount(), c.headCountKv(), headDim, c.attentionScale(),
                c.attnSoftcap(), sliding ? c.slidingWindow() : 0);
        be.matmul(w.wo, a.xb, 0, xbW, a.xb2, 0, dim, dim, qDim, n);
        if (w.attnPostNorm != null) be.rmsnorm(a.xb2, 0, dim, a.xb2, 0, dim, w.attnPostNorm, n, 1, dim, eps);
        be.add(a.x, 0, dim, a.xb2, 0, dim, dim, n);

        // gated feed-forward: SwiGLU, or GeGLU for Gemma
        be.rmsnorm(a.xb, 0, xbW, a.x, 0, dim, w.ffnNorm, n, 1, dim, eps);
        DeviceBuffer up;
        int upOff, upW;
        if (w.wGate != null) {
            be.matmulShared(gateUpShared[l], gateUpRows, a.xb, 0, xbW, a.gateUpOut, dim, n);
            up = a.hb2;
            upOff = 0;
            upW = ff;
        } else {
            be.matmul(w.wUp, a.xb, 0, xbW, a.hb, 0, 2 * ff, 2 * ff, dim, n); // rows [0, ff) gate, [ff, 2ff) up
            up = a.hb;
            upOff = ff;
            upW = 2 * ff;
        }
        be.gatedActivation(a.hb, 0, upW, up, upOff, upW, ff, n, c.arch().gemma);
        be.matmul(w.wDown, a.hb, 0, upW, a.xb2, 0, dim, dim, ff, n);
        if (w.ffnPostNorm != null) be.rmsnorm(a.xb2, 0, dim, a.xb2, 0, dim, w.ffnPostNorm, n, 1, dim, eps);
        be.add(a.x, 0, dim, a.xb2, 0, dim, dim, n);
    }

    /**
     * A sentence embedding from the model itself: the final-normed hidden state averaged over all positions, scaled
     * to unit length (what llama.cpp's mean pooling gives). Runs on a private KV cache.
     */
    public float[] embed(int[] tokens) {
        if (tokens.length == 0) throw new IllegalArgumentException("nothing to embed");
        InferenceState s = newState(tokens.length);
        s.keepHidden = true;
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

    private void finishSoftcapAndCheck(InferenceState s) {
        softcapAndCheck(s.logits, 0, s.logits.length);
    }

    /** Gemma's final softcap on logits[from, to), then the check that every value is finite. */
    private void softcapAndCheck(float[] logits, int from, int to) {
        ModelConfig c = config;
        if (c.finalSoftcap() > 0f) {
            float cap = c.finalSoftcap();
            for (int i = from; i < to; i++) logits[i] = (float) Math.tanh(logits[i] / cap) * cap;
        }
        for (int i = from; i < to; i++) {
            if (!Float.isFinite(logits[i])) throw nonFiniteWeights();
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

    @Override
    public void close() {
        preparers.values().forEach(WeightPreparer::close);
        gguf.close();
    }
}
