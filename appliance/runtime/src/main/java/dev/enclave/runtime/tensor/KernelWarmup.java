package dev.enclave.runtime.tensor;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.util.Set;

/**
 * Runs the kernels of the given types on small tensors so the JIT compiles them before the first real token:
 * interpreted Vector API code is orders of magnitude slower than compiled, and a model's first forward pass would
 * otherwise pay for that on gigabytes of weights.
 *
 * <p>Two phases on one background thread. The first compiles what a prompt's first token needs (the float kernels, the
 * integer route's one-token kernels, the sampler's vector passes, and tasks the caller adds, such as its backend's
 * batch products) and is what a model's loader waits for ({@link #awaitFirstToken}), helping with it. The second
 * compiles the four-token kernels (prompt batches, several sequences decoding) while the model already answers;
 * until it is done, {@link #batchKernelsWarming} tells the CPU backend to run batches token by token through the
 * compiled one-token kernel, which gives the same results bit for bit. Each kernel is run until it is measured at
 * compiled speed rather than a fixed number of times, on native and mapped memory in turn (the two kinds the
 * model's repacked tensors live in), so it is not compiled for one and thrown away at its first real call.
 */
public final class KernelWarmup {

    /** The warm-up's progress at DEBUG (under the server: quarkus.log.category."dev.enclave.runtime.warmup".level=DEBUG). */
    private static final System.Logger LOG = System.getLogger("dev.enclave.runtime.warmup");
    /** Warm-ups whose four-token kernels are not compiled yet; batches wait for none of them. */
    private static final java.util.concurrent.atomic.AtomicInteger BATCH_WARMING = new java.util.concurrent.atomic.AtomicInteger();

    private static final java.util.concurrent.atomic.AtomicBoolean SHARED_STARTED = new java.util.concurrent.atomic.AtomicBoolean();
    private static final java.util.concurrent.CountDownLatch SHARED_DONE = new java.util.concurrent.CountDownLatch(1);

    private final java.util.Set<GGMLType> types;
    private final boolean repacked;
    private final java.util.Map<GGMLType, MemorySegment> samples;
    /** The integer route's kernels, each as {native, mapped} twins (empty on the float route). */
    private final java.util.List<RowGroupTensor[]> kernels = new java.util.ArrayList<>();
    /** What a first token needs, claimed in order by the warm-up thread and by the thread that waits for it. */
    private final java.util.List<Runnable> firstTokenTasks = new java.util.ArrayList<>();
    private final java.util.concurrent.atomic.AtomicInteger nextTask = new java.util.concurrent.atomic.AtomicInteger();
    private final java.util.concurrent.CountDownLatch firstToken;
    private final Thread thread;

    private KernelWarmup(Set<GGMLType> types, boolean repacked4Bit, boolean q6kSixBits, boolean q6kInt8,
                         java.util.Map<GGMLType, MemorySegment> samples, java.util.List<Runnable> more) {
        this.types = types;
        this.repacked = repacked4Bit && RowGroupTensor.AVAILABLE;
        this.samples = samples;
        if (repacked) {
            for (GGMLType t : new GGMLType[] {GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q8_0, GGMLType.Q6_K}) {
                if (!types.contains(t) || t == GGMLType.Q8_0 && !Q8RowGroupTensor.PREFERRED) continue;
                if (t != GGMLType.Q6_K || q6kInt8) kernels.add(new RowGroupTensor[2]);
                if (t == GGMLType.Q6_K && q6kSixBits) kernels.add(new RowGroupTensor[2]);
            }
            // the layers' kernels first (every layer of every token), then the output matrix's (once per token)
            int k = 0;
            for (GGMLType t : new GGMLType[] {GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q8_0, GGMLType.Q6_K}) {
                if (!types.contains(t) || t == GGMLType.Q8_0 && !Q8RowGroupTensor.PREFERRED) continue;
                if (t != GGMLType.Q6_K || q6kInt8) firstTokenTasks.add(oneTokenTask(k++, t, false));
                if (t == GGMLType.Q6_K && q6kSixBits) firstTokenTasks.add(oneTokenTask(k++, t, true));
            }
        }
        firstTokenTasks.add(this::floatKernels);
        firstTokenTasks.add(KernelWarmup::warmShared);
        firstTokenTasks.addAll(more);
        firstToken = new java.util.concurrent.CountDownLatch(firstTokenTasks.size());
        BATCH_WARMING.incrementAndGet();
        thread = Thread.ofPlatform().daemon().name("enclave-warmup").unstarted(() -> {
            try {
                log("start");
                runFirstTokenTasks();
                firstToken.await(); // the loader may still be finishing a task it claimed
                for (RowGroupTensor[] twins : kernels) untilCompiled(twins, true);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IllegalStateException closed) {
                // the model's memory was closed under the warm-up (its load failed, or it was closed at once): nothing
                // is left to warm up for, and a background thread has no one to report to
            } catch (RuntimeException e) {
                // warming up is best effort: the model works without it, only its first answers are slower
                System.getLogger(KernelWarmup.class.getName()).log(System.Logger.Level.WARNING, "kernel warm-up failed", e);
            } finally {
                while (firstToken.getCount() > 0) firstToken.countDown();
                BATCH_WARMING.decrementAndGet();
                log("done");
            }
        });
    }

    /**
     * Starts warming up in the background.
     *
     * @param repacked4Bit whether the model runs Q4_0/Q4_K/Q8_0 on the repacked integer route ({@link Q4RowGroupTensor},
     *     {@link Q8RowGroupTensor}), whose kernels are then warmed instead of those types' float dot products
     * @param q6kSixBits whether some Q6_K matrix is repacked at 6 bits ({@link Q6RowGroupTensor}: the vocabulary-sized one)
     * @param q6kInt8 whether some Q6_K matrix is repacked as int8 ({@link Int8RowGroupTensor}: layers, or the
     *     vocabulary-sized one when asked)
     * @param samples per type, memory of the model's own weights of that type (its mapped file): the kernels are run
     *     on a slice of it, so the JIT profiles the segment kind the model will use (warming a float kernel on native
     *     memory and then running it on mapped memory measured 40% slower decoding on Q8_0)
     */
    public static KernelWarmup start(Set<GGMLType> types, boolean repacked4Bit, boolean q6kSixBits, boolean q6kInt8,
                                     java.util.Map<GGMLType, MemorySegment> samples) {
        return start(types, repacked4Bit, q6kSixBits, q6kInt8, samples, java.util.List.of());
    }

    /** As above, with more tasks a first token needs (the caller's, e.g. its backend's batch products). */
    public static KernelWarmup start(Set<GGMLType> types, boolean repacked4Bit, boolean q6kSixBits, boolean q6kInt8,
                                     java.util.Map<GGMLType, MemorySegment> samples, java.util.List<Runnable> more) {
        KernelWarmup w = new KernelWarmup(types, repacked4Bit, q6kSixBits, q6kInt8, samples, more);
        w.thread.start();
        return w;
    }

    /**
     * Waits until the kernels a prompt's first token needs are compiled (the first phase), helping: the caller has
     * just finished loading and would otherwise leave its core idle.
     */
    public void awaitFirstToken() throws InterruptedException {
        try {
            runFirstTokenTasks();
        } catch (RuntimeException e) {
            // warming up is best effort; the model works without it
        }
        firstToken.await();
    }

    private void runFirstTokenTasks() {
        for (int i; (i = nextTask.getAndIncrement()) < firstTokenTasks.size(); ) {
            try {
                firstTokenTasks.get(i).run();
            } finally {
                firstToken.countDown();
            }
        }
    }

    /** Waits for both phases. */
    public void join() throws InterruptedException {
        thread.join();
    }

    /**
     * Whether some warm-up is still compiling the four-token kernels ({@link RowGroupTensor#multiply4}): batches should
     * then run the one-token kernel, token by token, rather than the four-token one interpreted.
     */
    public static boolean batchKernelsWarming() {
        return BATCH_WARMING.get() != 0;
    }

    /**
     * Compiles what every model's first token needs whatever its weights (the element-wise loops and the sampler's
     * passes over the vocabulary), once per process: a caller that knows a model is about to be loaded can start this
     * before the model file is even opened. A second caller waits for the first one's run to end.
     */
    public static void warmShared() {
        if (SHARED_STARTED.compareAndSet(false, true)) {
            try {
                vectorMath();
            } finally {
                SHARED_DONE.countDown();
            }
        } else {
            try {
                SHARED_DONE.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Whether {@link #warmShared} has run to its end in this process. */
    public static boolean sharedWarmed() {
        return SHARED_DONE.getCount() == 0;
    }

    /** The float route's dot products, for the types the integer route does not take. */
    private void floatKernels() {
        int cols = 512;
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (i % 7) * 0.01f;
        float sink = 0;
        for (GGMLType t : types) {
            if (!t.hasKnownLayout() || t.blockSize > cols) continue;
            if (repacked && (t == GGMLType.Q4_0 || t == GGMLType.Q4_K || t == GGMLType.Q6_K
                    || t == GGMLType.Q8_0 && Q8RowGroupTensor.PREFERRED)) continue;
            MemorySegment sample = samples.get(t);
            MemorySegment bytes = sample != null && sample.byteSize() >= t.byteSize(cols) ? sample.asSlice(0, t.byteSize(cols))
                    : java.lang.foreign.Arena.ofAuto().allocate(t.byteSize(cols), 64);
            FloatTensor tensor;
            try {
                tensor = FloatTensor.of(t, bytes, cols);
            } catch (RuntimeException unsupported) {
                continue;
            }
            if (tensor instanceof Q6_KTensor q6) {
                tensor = Int8RowsTensor.fromQ6_K(q6, java.lang.foreign.Arena.ofAuto()); // what the model runs Q6_K as
            }
            float[] row = new float[cols];
            for (int i = 0; i < 4_000; i++) {
                sink += tensor.dot(0, x, 0, cols);
                if ((i & 63) == 0) tensor.copyTo(0, row, 0, cols);
            }
        }
        if (sink == 42) System.out.print(""); // keep the loop alive
        log("float kernels warmed");
    }

    /**
     * Repacks a tensor of the smallest size of type t (one group; 32 columns for Q4_0/Q8_0, one 256-column super-block
     * for the K types: interpreted Vector API code is very slow, so short calls reach the compile thresholds soonest)
     * and runs its one-token kernel until compiled.
     */
    private Runnable oneTokenTask(int k, GGMLType t, boolean sixBits) {
        return () -> {
            int c = t == GGMLType.Q4_0 || t == GGMLType.Q8_0 ? 32 : 256;
            MemorySegment bytes = java.lang.foreign.Arena.ofAuto().allocate(t.byteSize(32L * c), 64);
            FloatTensor src = FloatTensor.of(t, bytes, 32L * c);
            java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofAuto();
            RowGroupTensor q = t == GGMLType.Q8_0 ? Q8RowGroupTensor.repack(src, 32, c, arena)
                    : t != GGMLType.Q6_K ? Q4RowGroupTensor.repack(src, 32, c, arena)
                    : sixBits ? Q6RowGroupTensor.repack((Q6_KTensor) src, 32, c, arena)
                    : Int8RowGroupTensor.repack((Q6_KTensor) src, 32, c, arena);
            RowGroupTensor[] twins = kernels.get(k);
            twins[1] = mappedTwin(q, t, samples);
            twins[0] = q;
            untilCompiled(twins, false);
        };
    }

    /**
     * The element-wise loops of every layer (SwiGLU) and of sampling (softmax and nucleus over the whole vocabulary:
     * interpreted, the nucleus's 31 passes over 128K probabilities took ~200 ms of the first token). Most calls are
     * short; every 256th is past one 256-vector accumulation chunk, so no branch is left unprofiled and compiled as
     * a trap. Until C2 has compiled them these calls run the Vector API's fallback code, allocating per vector, on a
     * core the start needs: a long call every eighth and 1,500 calls cost a start ~70 ms of CPU for nothing.
     */
    private static void vectorMath() {
        float[] x = new float[4096 + 3 * 16 + 5];
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) x[i] = (i % 13) * 0.1f - 0.6f;
        double sink = 0;
        for (int i = 0; i < 800; i++) {
            int n = (i & 255) == 0 ? x.length : 53;
            float max = VectorMath.max(x, 0, n);
            double sum = VectorMath.expShifted(x, 0, y, 0, n, max, 1f);
            VectorMath.scale(y, 0, n, (float) (1 / sum));
            sink += VectorMath.sumAtLeast(y, 0, n, 1e-3f);
            VectorMath.siluMul(y, 0, x, 0, n);
        }
        // then the sampler's passes until compiled (max, scale and the nucleus's sum under 0.5 ns per element, C1's
        // code takes ~2; the exponential is left out of the timing, being scalar where the JDK has no vector one):
        // otherwise the first token's sampling took 90-140 ms instead of ~20
        double[] kept = {sink};
        untilFast(() -> {
            float max = VectorMath.max(x, 0, x.length);
            VectorMath.scale(y, 0, x.length, 1f);
            kept[0] += VectorMath.sumAtLeast(y, 0, x.length, 1e-3f) + max;
        }, 3.0 * x.length, 0.5, 3, "the sampler's vector passes");
        if (kept[0] == 42) System.out.print("");
    }

    /**
     * Calls {@code call} (about {@code work} multiply-adds, or elements) until it runs under {@code nsPerUnit}, or for
     * {@code capSeconds} at most (a CPU too slow for the mark, or a JIT that never compiles it): then a warning says
     * so, and the model starts anyway, its first answers slower.
     */
    public static void untilFast(Runnable call, double work, double nsPerUnit, int capSeconds, String what) {
        long t0 = System.nanoTime();
        while (true) {
            long s = System.nanoTime();
            call.run();
            long e = System.nanoTime();
            if ((e - s) / work < nsPerUnit) break;
            if (e - t0 > capSeconds * 1_000_000_000L) {
                System.getLogger(KernelWarmup.class.getName()).log(System.Logger.Level.WARNING,
                        "{0} still runs at {1} ns per multiply-add after {2} s of warm-up (compiled: under {3});"
                                + " the model starts anyway, and its first answers may be slow",
                        what, String.format("%.1f", (e - s) / work), capSeconds, nsPerUnit);
                break;
            }
        }
        log(what + " compiled");
    }

    private static void log(String what) {
        if (LOG.isLoggable(System.Logger.Level.DEBUG)) LOG.log(System.Logger.Level.DEBUG, "{0} at {1} ms", what, java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime());
    }

    /**
     * The same kernel over memory of the kind the model's repacked tensors live in: mapped (the repack cache) besides
     * native (repacked at this start). A kernel compiled having seen only one kind is thrown away (an uncommon trap) the
     * first time it meets the other, and the real weights would then run through it interpreted.
     */
    private static RowGroupTensor mappedTwin(RowGroupTensor q, GGMLType t, java.util.Map<GGMLType, MemorySegment> samples) {
        MemorySegment[] segs = q.segments();
        long need = 0;
        for (MemorySegment s : segs) need += s == null ? 0 : (s.byteSize() + 63) & ~63L;
        MemorySegment sample = null;
        for (MemorySegment m : samples.values()) if (m.byteSize() >= need && m.isMapped()) { sample = m; break; }
        if (sample == null) for (MemorySegment m : samples.values()) if (m.byteSize() >= need) { sample = m; break; }
        if (sample == null) return q;
        MemorySegment[] twin = new MemorySegment[segs.length];
        long off = 0;
        for (int i = 0; i < segs.length; i++) {
            if (segs[i] == null) continue;
            twin[i] = sample.asSlice(off, segs[i].byteSize());
            off += (segs[i].byteSize() + 63) & ~63L;
        }
        return RowGroupTensor.fromSegments(q.kind(), t, twin, q.rows(), q.cols());
    }

    /**
     * Calls a kernel, on its native and mapped twins in turn, until it runs at compiled speed: under 2 ns per
     * multiply-add on these tiny tensors, where C1's code takes 10-30 and the interpreter ~1000. Gives up after 10 s
     * (a CPU too slow for the mark): the model then starts anyway.
     */
    private static void untilCompiled(RowGroupTensor[] twins, boolean four) {
        if (twins[0] == null) return; // its one-token task failed
        float[] x = new float[4 * 256];
        for (int i = 0; i < x.length; i++) x[i] = (i % 5) * 0.02f;
        Q8Activations a = new Q8Activations();
        float[] out = new float[4 * 32];
        int c = twins[0].cols();
        a.quantize(x, 0, c, c, four ? 4 : 1);
        untilFast(() -> {
            for (int i = 0; i < 8; i++) {
                RowGroupTensor q = twins[i & 1];
                if (four) q.multiply4(a, 0, 0, 1, out, 0, 32);
                else q.multiply(a, 0, 0, 1, out, 0);
            }
        }, 8.0 * 32 * c * (four ? 4 : 1), 2, 10, twins[0].kind() + (four ? " four-token" : " one-token") + " kernel");
    }
}
