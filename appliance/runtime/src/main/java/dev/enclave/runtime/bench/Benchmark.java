package dev.enclave.runtime.bench;

import dev.enclave.runtime.backend.cpu.CpuBackend;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * llama-bench's two tests on our runtime: pp (a prompt of random tokens from an empty cache, tokens/s) and tg
 * (tokens generated one at a time from an empty cache). Also measures this machine's memory read bandwidth with
 * the same threads, which bounds decode speed: every generated token reads every weight once.
 */
public final class Benchmark {

    public record Result(double ppTokS, double ppStd, double tgTokS, double tgStd, double bandwidthGBs, long bytesPerToken) {
        public double bandwidthLimitTokS() {
            return bandwidthGBs * 1e9 / bytesPerToken;
        }

        public double tgBandwidthPercent() {
            return 100 * tgTokS / bandwidthLimitTokS();
        }
    }

    private final TransformerModel model;
    private final CpuBackend backend;

    public Benchmark(TransformerModel model, CpuBackend backend) {
        this.model = model;
        this.backend = backend;
    }

    public Result run(int prompt, int gen, int reps) {
        return run(prompt, gen, reps, 0);
    }

    /** As llama-bench {@code -d depth}: each test runs with {@code depth} tokens already in the KV cache. */
    public Result run(int prompt, int gen, int reps, int depth) {
        SplittableRandom r = new SplittableRandom(42);
        int vocab = model.config().vocabularySize();
        int[] tokens = new int[Math.max(prompt, 1)];
        for (int i = 0; i < tokens.length; i++) tokens[i] = r.nextInt(vocab);
        int[] context = new int[depth];
        for (int i = 0; i < depth; i++) context[i] = r.nextInt(vocab);
        InferenceState s = model.newState(depth + Math.max(prompt, gen) + 1);
        // warm-up: JIT compilation of every kernel on this model
        try {
            model.awaitWarmup();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        s.truncate(0);
        model.ingest(s, java.util.Arrays.copyOf(tokens, Math.min(tokens.length, 8)));
        // and the one-token step's own code (attention over one query, the element-wise steps at one row), which the
        // prompt does not run: as llama-bench warms each test before timing it
        s.truncate(0);
        for (int i = 0, token = tokens[0]; i < Math.min(gen, 16); i++) token = argmax(model.forward(s, token));
        s.truncate(0);
        if (depth > 0) model.ingest(s, context); // computed once; each test cuts the cache back to it
        double[] pp = new double[reps];
        double[] tg = new double[reps];
        for (int k = 0; k < reps; k++) {
            if (prompt > 0) {
                s.truncate(depth);
                long t0 = System.nanoTime();
                model.ingest(s, tokens);
                pp[k] = prompt / ((System.nanoTime() - t0) / 1e9);
            }
            if (gen > 0) {
                s.truncate(depth);
                int token = tokens[0];
                long t0 = System.nanoTime();
                for (int i = 0; i < gen; i++) {
                    float[] logits = model.forward(s, token);
                    token = argmax(logits);
                }
                tg[k] = gen / ((System.nanoTime() - t0) / 1e9);
            }
        }
        return new Result(mean(pp), std(pp), mean(tg), std(tg), readBandwidth(backend), bytesPerToken());
    }

    /** Weight bytes one decode step reads: everything but the embedding table (one row), unless it is also the output. */
    long bytesPerToken() {
        long total = 0;
        boolean tied = model.gguf().tensor("output.weight") == null;
        for (GGUFTensorInfo t : model.gguf().tensors().values()) {
            if (t.name().equals("token_embd.weight") && !tied) continue;
            total += t.byteSize();
        }
        return total;
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** Reads a 1 GiB off-heap buffer with all threads, best of 3, in GB/s. */
    public static double readBandwidth(CpuBackend backend) {
        long bytes = 1L << 30;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(bytes, 64);
            seg.fill((byte) 1);
            int chunks = backend.threads() * 64;
            long chunk = bytes / chunks;
            float[] sink = new float[chunks];
            double best = 0;
            MemorySegment shared = seg; // read from pool threads: use a global view
            for (int rep = 0; rep < 3; rep++) {
                long t0 = System.nanoTime();
                backend.pool().run(chunks, (from, to) -> {
                    for (int c = from; c < to; c++) {
                        FloatVector acc = FloatVector.zero(F);
                        long end = (c + 1) * chunk;
                        for (long o = c * chunk; o < end; o += F.vectorByteSize() * 4L) {
                            acc = acc.add(FloatVector.fromMemorySegment(F, shared, o, ByteOrder.LITTLE_ENDIAN))
                                    .add(FloatVector.fromMemorySegment(F, shared, o + F.vectorByteSize(), ByteOrder.LITTLE_ENDIAN))
                                    .add(FloatVector.fromMemorySegment(F, shared, o + 2L * F.vectorByteSize(), ByteOrder.LITTLE_ENDIAN))
                                    .add(FloatVector.fromMemorySegment(F, shared, o + 3L * F.vectorByteSize(), ByteOrder.LITTLE_ENDIAN));
                        }
                        sink[c] = acc.reduceLanes(VectorOperators.ADD);
                    }
                });
                best = Math.max(best, bytes / ((System.nanoTime() - t0) / 1e9) / 1e9);
            }
            return best;
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static double mean(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s / v.length;
    }

    private static double std(double[] v) {
        if (v.length < 2) return 0;
        double m = mean(v), s = 0;
        for (double x : v) s += (x - m) * (x - m);
        return Math.sqrt(s / (v.length - 1));
    }
}
