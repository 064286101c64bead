package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.ModelFormatException;
import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.Weight;
import dev.enclave.runtime.backend.WeightPreparer;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.model.ActivationPrecision;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tensor.Int8RowGroupTensor;
import dev.enclave.runtime.tensor.Int8RowsTensor;
import dev.enclave.runtime.tensor.KernelWarmup;
import dev.enclave.runtime.tensor.Q4RowGroupTensor;
import dev.enclave.runtime.tensor.Q6RowGroupTensor;
import dev.enclave.runtime.tensor.Q6_KTensor;
import dev.enclave.runtime.tensor.Q8RowGroupTensor;
import dev.enclave.runtime.tensor.Q8_0Tensor;
import dev.enclave.runtime.tensor.RowGroupTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The CPU's preparation of a model's weights. With int8 activations ({@link ActivationPrecision#Q8}) the 4-bit,
 * Q8_0 and Q6_K matrices are repacked into row groups for the integer kernels ({@link RowGroupTensor}), kept in the
 * {@link RepackCache} between starts; the other tensors stay in the memory-mapped file as they are. The kernels'
 * warm-up (JIT compilation on the second core) starts with the preparation, so the first token does not wait for it.
 */
final class CpuWeights implements WeightPreparer {

    /** The ggml types the CPU multiplies (those {@link FloatTensor#of} reads). */
    static final Set<GGMLType> SUPPORTED = EnumSet.of(GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0,
            GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K,
            GGMLType.Q6_K, GGMLType.IQ4_NL);

    private final GGUFFile gguf;
    private final RuntimeOptions options;
    private final CpuBackend backend;
    private final boolean grouped;
    /** Memory for tensors repacked at load; freed with the model. */
    private final Arena arena = Arena.ofShared();
    private final RepackCache cache;
    private final KernelWarmup warmup;
    private Thread cacheWriter;

    CpuWeights(CpuBackend backend, GGUFFile gguf, Path file, RuntimeOptions options) {
        this.gguf = gguf;
        this.options = options;
        this.backend = backend;
        this.grouped = options.activations() == ActivationPrecision.Q8;
        // compile the kernels on the second core while this one reads the vocabulary and repacks tensors
        this.warmup = options.warmup() ? startWarmup(backend) : null;
        this.cache = grouped || backend.nativeKernels() != null ? RepackCache.open(options.repackCacheDir(), file, arena) : null;
    }

    private KernelWarmup startWarmup(CpuBackend backend) {
        Set<GGMLType> types = EnumSet.noneOf(GGMLType.class);
        Map<GGMLType, MemorySegment> samples = new EnumMap<>(GGMLType.class);
        boolean sixBits = false, int8 = false;
        NativeKernels natives = backend.nativeKernels();
        for (GGUFTensorInfo t : gguf.tensors().values()) {
            if (natives != null && natives.supports(t.type())) continue; // native code: nothing for the JIT to warm
            if (t.dims().length < 2) continue; // norms and biases are read value by value, not multiplied
            types.add(t.type());
            samples.putIfAbsent(t.type(), gguf.tensorData(t));
            if (t.type() == GGMLType.Q6_K && t.dims().length == 2) {
                boolean six = isVocabularyMatrix(t.name()) && !options.vocabularyInt8();
                sixBits |= six;
                int8 |= !six;
            }
        }
        return KernelWarmup.start(types, grouped, sixBits, int8, samples, floatBatchWarmups(types, samples, backend));
    }

    /**
     * Prompt batches of the matrices that stay on the float route (F16, BF16, F32; Q8_0 where the integer route is not
     * preferred): their tiled batch product is other code than the dot product the warm-up compiles, and on an F16
     * file a 2-token first prompt ran it interpreted for 2.5 s. A slice of the model's own mapped weights, 5 tokens
     * (a 4-token tile and a single one), until compiled.
     */
    private List<Runnable> floatBatchWarmups(Set<GGMLType> types, Map<GGMLType, MemorySegment> samples, CpuBackend backend) {
        List<Runnable> tasks = new ArrayList<>();
        for (GGMLType t : types) {
            boolean floatRoute = t == GGMLType.F16 || t == GGMLType.BF16 || t == GGMLType.F32
                    || t == GGMLType.Q8_0 && !(grouped && Q8RowGroupTensor.PREFERRED);
            int rows = 64, cols = 512, tokens = 5;
            MemorySegment sample = samples.get(t);
            if (!floatRoute || sample == null || sample.byteSize() < t.byteSize((long) rows * cols)) continue;
            tasks.add(() -> {
                FloatTensor w = FloatTensor.of(t, sample.asSlice(0, t.byteSize((long) rows * cols)), (long) rows * cols);
                float[] x = new float[tokens * cols];
                for (int i = 0; i < x.length; i++) x[i] = (i % 7) * 0.01f;
                float[] out = new float[tokens * rows];
                KernelWarmup.untilFast(() -> backend.matmulBatch(w, x, 0, cols, out, 0, rows, rows, cols, tokens),
                        (double) rows * cols * tokens, 1.0, 5, t + " batch product");
            });
        }
        return tasks;
    }

    @Override
    public Weight prepare(String name, FloatTensor tensor, int rows, int cols) {
        if (backend.runsNatively(tensor)) {
            NativeKernels k = backend.nativeKernels();
            long bytes = rows > 1 ? k.repackedBytes(tensor.type(), rows, cols) : 0;
            if (bytes == 0) return tensor; // the native kernels read the file's own layout
            if (cache != null) {
                MemorySegment[] segs = cache.segments(name, NativeRepackedTensor.KIND, tensor.type(), rows, cols);
                if (segs != null && segs.length == 1 && segs[0] != null && segs[0].byteSize() == bytes) {
                    return new NativeRepackedTensor(k, tensor, segs[0], rows, cols);
                }
            }
            MemorySegment packed = arena.allocate(bytes, 64);
            backend.nativeRepack(tensor, rows, cols, packed);
            if (cache != null) {
                cache.put(name, new RepackCache.Stored(NativeRepackedTensor.KIND, tensor.type(), rows, cols, new MemorySegment[] {packed}));
            }
            if (tensor.data().isMapped()) tensor.data().unload(); // read again only for embedding rows
            return new NativeRepackedTensor(k, tensor, packed, rows, cols);
        }
        boolean matrix = rows > 1;
        boolean group = grouped && matrix && (Q4RowGroupTensor.supports(tensor, rows, cols)
                || Q6RowGroupTensor.supports(tensor, rows, cols) // Q6_K: either form
                || Q8RowGroupTensor.PREFERRED && Q8RowGroupTensor.supports(tensor, rows, cols));
        if (group && cache != null) {
            RowGroupTensor cached = cache.get(name, RowGroupTensor.kindOf(groupKind(name, tensor)), tensor.type(), rows, cols);
            if (cached != null) return cached; // mapped from the cache file: the model file's pages are never touched
        }
        if (group) {
            RowGroupTensor r = repackGrouped(name, tensor, rows, cols);
            if (cache != null) cache.put(name, r);
            return r;
        }
        if (tensor instanceof Q6_KTensor q6 && options.repackQ6K()) {
            // Q6_K's bit layout costs ten times more to decode than int8 with a scale per 16 values, which holds the
            // same values exactly: repack at load (52% more bytes for these tensors, ~10x faster products)
            FloatTensor r = Int8RowsTensor.fromQ6_K(q6, arena);
            if (tensor.data().isMapped()) tensor.data().unload(); // the file's pages are no longer needed in memory
            return r;
        }
        return tensor;
    }

    /**
     * The repacked form of a 4-bit or Q6_K matrix. The vocabulary-sized Q6_K matrices (the output, or the embedding
     * tied to it) are multiplied once per generated token and never per prompt token: their bytes (a quarter of a 1B
     * model's) cost more than their arithmetic, so they keep 6 bits; a layer's Q6_K matrices are multiplied for every
     * prompt token, where int8's cheaper products win (4-token kernel ~1.4x faster, for 30% more bytes). An engine
     * batching many sequences asks for int8 there too ({@link RuntimeOptions#vocabularyInt8}).
     */
    private Class<? extends RowGroupTensor> groupKind(String name, FloatTensor tensor) {
        if (tensor instanceof Q8_0Tensor) return Q8RowGroupTensor.class;
        if (!(tensor instanceof Q6_KTensor)) return Q4RowGroupTensor.class;
        return isVocabularyMatrix(name) && !options.vocabularyInt8() ? Q6RowGroupTensor.class : Int8RowGroupTensor.class;
    }

    /** The output matrix or the token embedding (which may be tied to it): a row per vocabulary entry. */
    private static boolean isVocabularyMatrix(String name) {
        return name.equals("output.weight") || name.equals("token_embd.weight");
    }

    /** The integer route's repacking (see Q4RowGroupTensor, Q6RowGroupTensor, Int8RowGroupTensor, Q8RowGroupTensor): same values, faster products. */
    private RowGroupTensor repackGrouped(String name, FloatTensor tensor, int rows, int cols) {
        RowGroupTensor r;
        try {
            Class<? extends RowGroupTensor> kind = groupKind(name, tensor);
            if (kind == Q6RowGroupTensor.class) r = Q6RowGroupTensor.repack((Q6_KTensor) tensor, rows, cols, arena);
            else if (kind == Int8RowGroupTensor.class) r = Int8RowGroupTensor.repack((Q6_KTensor) tensor, rows, cols, arena);
            else if (kind == Q8RowGroupTensor.class) r = Q8RowGroupTensor.repack(tensor, rows, cols, arena);
            else r = Q4RowGroupTensor.repack(tensor, rows, cols, arena);
        } catch (ModelFormatException e) {
            throw new ModelFormatException("tensor '" + name + "' " + e.getMessage(), e);
        }
        if (tensor.data().isMapped()) tensor.data().unload(); // the file's pages are no longer needed in memory
        return r;
    }

    @Override
    public void finish() {
        if (warmup != null) {
            try {
                warmup.awaitFirstToken(); // the batch kernels finish compiling in the background
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (cache != null) cacheWriter = cache.writeInBackground();
    }

    @Override
    public void awaitWarmup() throws InterruptedException {
        if (warmup != null) warmup.join();
    }

    /** The background write of the repack cache, or null (for tests). */
    Thread cacheWriter() {
        return cacheWriter;
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
        arena.close();
    }
}
