package dev.enclave.rag.embed;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A bundled BERT-style sentence embedder on ONNX Runtime: Hugging Face tokenizer (the model's own
 * tokenizer.json), truncation at the model's limit, batches of similar length padded together, pooling as the
 * model was trained (mean or CLS), L2-normalised output.
 */
public final class OnnxEmbedder implements Embedder {


    private final EmbeddingModel model;
    private final OrtEnvironment env;
    private final OrtSession session;
    private final HuggingFaceTokenizer tokenizer;
    private final boolean wantsTypeIds;
    private final ExecutorService workers;
    /** [CLS] and [SEP] as this tokenizer adds them, or null when it adds something else (then no reuse). */
    private final long[] specials;
    /**
     * Texts recently counted by {@link #countTokens} (a chunker sizing chunks) with their token ids, so embedding
     * the same text does not tokenize it again; an entry is taken out when used, the oldest dropped past 2,048.
     */
    private final Map<String, long[]> counted = new java.util.LinkedHashMap<>(256, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, long[]> eldest) {
            return size() > 2048;
        }
    };

    public OnnxEmbedder(EmbeddingModel model, Path nativeDir, int threads) {
        this.model = model;
        NativeLibraries.prepare(nativeDir);
        this.workers = threads <= 1 ? null : Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "embedder");
            t.setDaemon(true);
            return t;
        });
        try {
            this.env = OrtEnvironment.getEnvironment();
            byte[] onnx = resource(model.modelResource);
            OrtSession.SessionOptions options = new OrtSession.SessionOptions();
            // measured on 2 cores: one thread per run and runs in parallel beats one run on 2 threads (61 vs 55
            // MiniLM passages/s; bge 18 vs 11)
            options.setIntraOpNumThreads(1);
            options.setInterOpNumThreads(1);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            this.session = env.createSession(onnx, options);
            this.wantsTypeIds = session.getInputNames().contains("token_type_ids");
            try (InputStream in = EmbeddingModel.class.getResourceAsStream(model.tokenizerResource)) {
                if (in == null) throw new IOException("tokenizer not on the class path: " + model.tokenizerResource);
                // truncation is done here, not by the tokenizer, so countTokens sees whole texts
                this.tokenizer = HuggingFaceTokenizer.newInstance(in, Map.of(
                        "truncation", "false",
                        "padding", "false"));
            }
            this.specials = wrapsInTwoTokens(tokenizer) ? tokenizer.encode("").getIds() : null;
        } catch (OrtException e) {
            throw new IllegalStateException("cannot load embedding model " + model.id + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether encoding with special tokens is the plain encoding between one token before and one after. */
    private static boolean wrapsInTwoTokens(HuggingFaceTokenizer tokenizer) {
        long[] empty = tokenizer.encode("").getIds();
        if (empty.length != 2) return false;
        String probe = "Insulin lowers blood glucose: 7.5 mmol/L, über-fast.";
        long[] plain = tokenizer.encode(probe, false, false).getIds();
        long[] full = tokenizer.encode(probe).getIds();
        return full.length == plain.length + 2 && full[0] == empty[0] && full[full.length - 1] == empty[1]
                && Arrays.equals(Arrays.copyOfRange(full, 1, full.length - 1), plain);
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = EmbeddingModel.class.getResourceAsStream(name)) {
            if (in == null) throw new IOException("embedding model not on the class path: " + name);
            return in.readAllBytes();
        }
    }

    @Override
    public String name() {
        return model.id;
    }

    @Override
    public String version() {
        return "onnxruntime-" + OrtEnvironment.getEnvironment().getVersion() + "/" + model.id;
    }

    @Override
    public int dimension() {
        return model.dimension;
    }

    @Override
    public int maxTokens() {
        return model.maxTokens;
    }

    @Override
    public int countTokens(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        if (specials != null) {
            synchronized (counted) {
                counted.put(text, ids);
            }
        }
        return ids.length;
    }

    /** Token ids with special tokens, from an earlier count when there is one. */
    long[] tokenIds(String text) {
        long[] plain = null;
        if (specials != null) {
            synchronized (counted) {
                plain = counted.remove(text);
            }
        }
        if (plain == null) return tokenizer.encode(text).getIds();
        long[] ids = new long[plain.length + 2];
        ids[0] = specials[0];
        System.arraycopy(plain, 0, ids, 1, plain.length);
        ids[ids.length - 1] = specials[1];
        return ids;
    }

    @Override
    public float[] embedQuery(String text) {
        return embed(List.of(model.queryPrefix + text)).getFirst();
    }

    @Override
    public List<float[]> embedDocuments(List<String> texts) {
        return embed(texts);
    }

    @Override
    public CompletableFuture<List<float[]>> embedDocumentsAsync(List<String> texts) {
        if (workers == null || texts.isEmpty()) return Embedder.super.embedDocumentsAsync(texts);
        // one input per run: int8 dynamic quantization scales activations per run, so a text embeds the same
        // whatever it is batched with; throughput comes from running inputs on several threads instead. Each
        // task tokenizes its own text, so tokenizing is spread over the workers too.
        @SuppressWarnings("unchecked")
        CompletableFuture<float[]>[] parts = new CompletableFuture[texts.size()];
        for (int i = 0; i < parts.length; i++) {
            String text = texts.get(i);
            parts[i] = CompletableFuture.supplyAsync(() -> embedOne(tokenIds(text)), workers);
        }
        return CompletableFuture.allOf(parts).thenApply(done -> {
            List<float[]> out = new ArrayList<>(parts.length);
            for (CompletableFuture<float[]> p : parts) out.add(p.join());
            return out;
        });
    }

    private List<float[]> embed(List<String> texts) {
        if (texts.isEmpty()) return List.of();
        if (texts.size() > 1 && workers != null) {
            try {
                return embedDocumentsAsync(texts).join();
            } catch (CompletionException e) {
                if (e.getCause() instanceof RuntimeException r) throw r;
                throw new IllegalStateException(e.getCause());
            }
        }
        List<float[]> out = new ArrayList<>(texts.size());
        for (String t : texts) out.add(embedOne(tokenIds(t)));
        return out;
    }

    private float[] embedOne(long[] ids) {
        return runBatch(new long[][] {ids}, new int[] {0})[0];
    }

    private float[][] runBatch(long[][] tokens, int[] idx) {
        int b = idx.length;
        int len = 0;
        for (int i : idx) len = Math.max(len, Math.min(model.maxTokens, tokens[i].length));
        long[] ids = new long[b * len];
        long[] mask = new long[b * len];
        long[] types = new long[b * len];
        for (int r = 0; r < b; r++) {
            long[] tok = tokens[idx[r]];
            int keep = Math.min(tok.length, model.maxTokens);
            System.arraycopy(tok, 0, ids, r * len, keep);
            if (keep < tok.length) ids[r * len + keep - 1] = tok[tok.length - 1]; // keep the closing [SEP]
            Arrays.fill(mask, r * len, r * len + keep, 1L);
        }
        long[] shape = {b, len};
        try (OnnxTensor tIds = OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape);
             OnnxTensor tMask = OnnxTensor.createTensor(env, LongBuffer.wrap(mask), shape);
             OnnxTensor tTypes = OnnxTensor.createTensor(env, LongBuffer.wrap(types), shape)) {
            Map<String, OnnxTensor> inputs = wantsTypeIds
                    ? Map.of("input_ids", tIds, "attention_mask", tMask, "token_type_ids", tTypes)
                    : Map.of("input_ids", tIds, "attention_mask", tMask);
            try (OrtSession.Result result = session.run(inputs)) {
                OnnxTensor hidden = (OnnxTensor) result.get(0);
                FloatBuffer h = hidden.getFloatBuffer();
                int dim = model.dimension;
                float[][] vectors = new float[b][];
                for (int r = 0; r < b; r++) {
                    float[] v = new float[dim];
                    int base = r * len * dim;
                    if (model.pooling == EmbeddingModel.Pooling.CLS) {
                        h.get(base, v, 0, dim);
                    } else {
                        int count = Math.min(model.maxTokens, tokens[idx[r]].length);
                        float[] row = new float[dim];
                        for (int t = 0; t < count; t++) {
                            h.get(base + t * dim, row, 0, dim);
                            for (int d = 0; d < dim; d++) v[d] += row[d];
                        }
                        for (int d = 0; d < dim; d++) v[d] /= count;
                    }
                    vectors[r] = normalize(v);
                }
                return vectors;
            }
        } catch (OrtException e) {
            throw new IllegalStateException("embedding failed: " + e.getMessage(), e);
        }
    }

    static float[] normalize(float[] v) {
        double s = 0;
        for (float x : v) s += (double) x * x;
        float inv = s == 0 ? 0 : (float) (1.0 / Math.sqrt(s));
        for (int i = 0; i < v.length; i++) v[i] *= inv;
        return v;
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
        tokenizer.close();
        if (workers != null) workers.shutdownNow();
    }
}
