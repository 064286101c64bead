package dev.enclave.cpu;

import dev.enclave.runtime.backend.cpu.NativeKernels;
import dev.enclave.runtime.gguf.GGMLType;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * The native kernels (src/main/c/enclave_cpu.c) through {@code java.lang.foreign} downcalls: the library for this
 * machine's architecture is carried in the jar, copied once to a private temporary file and loaded; weights and
 * activations are passed as memory segments (the mapped file, the backend's native buffers), nothing is copied.
 * Found by the runtime's CPU backend with {@link java.util.ServiceLoader}.
 */
public final class NativeCpuKernels implements NativeKernels {

    private static final ValueLayout.OfLong J = ValueLayout.JAVA_LONG;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final java.lang.foreign.AddressLayout P = ValueLayout.ADDRESS;

    private final MethodHandle isa, setIsa, amx, setAmx, setPrefetch, stride, halfBytes, quantize, toHalves, matmul, repackedBytes, repack, matmulRepacked, repackedSupported, supports,
            dequantize, attends, attnScores, attnValues, attendsQ, attnScoresQ, attnValuesQ;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    /** Attention reads the KV cache's heap arrays in place: short calls, no copy (the GC waits for them). */
    private static final Linker.Option HEAP = Linker.Option.critical(true);
    /** Whether attention over float16 caches runs here with the instruction set in effect. */
    private volatile boolean attention, attentionQ;
    /** The types the library should multiply with the instruction set in effect (a test may force a slower set). */
    private volatile boolean q4, q8, q4k, q6k, f16;
    /** Whether the repacked layout's product runs here (AVX-512 VNNI); a test may force a slower set. */
    private volatile boolean repacked;

    public NativeCpuKernels() {
        this(library(), true);
    }

    /** The library at {@code library}; a temporary copy is deleted once loaded (the mapping outlives the name). */
    NativeCpuKernels(Path library, boolean temporary) {
        Linker linker = Linker.nativeLinker();
        SymbolLookup lib;
        try {
            lib = SymbolLookup.libraryLookup(library, Arena.global());
        } finally {
            if (temporary) {
                try {
                    Files.deleteIfExists(library);
                    Files.deleteIfExists(library.getParent());
                } catch (IOException e) {
                    library.toFile().deleteOnExit();
                }
            }
        }
        isa = linker.downcallHandle(find(lib, "enclave_isa"), FunctionDescriptor.of(I));
        setIsa = linker.downcallHandle(find(lib, "enclave_set_isa"), FunctionDescriptor.of(I, I));
        amx = linker.downcallHandle(find(lib, "enclave_amx"), FunctionDescriptor.of(I));
        setPrefetch = linker.downcallHandle(find(lib, "enclave_set_prefetch"), FunctionDescriptor.of(J, J));
        setAmx = linker.downcallHandle(find(lib, "enclave_set_amx"), FunctionDescriptor.of(I, I));
        stride = linker.downcallHandle(find(lib, "enclave_act_stride"), FunctionDescriptor.of(J, J));
        halfBytes = linker.downcallHandle(find(lib, "enclave_half_bytes"), FunctionDescriptor.of(J, J, J));
        quantize = linker.downcallHandle(find(lib, "enclave_quantize"), FunctionDescriptor.ofVoid(P, J, J, J, P));
        toHalves = linker.downcallHandle(find(lib, "enclave_to_half"), FunctionDescriptor.ofVoid(P, J, J, J, P));
        matmul = linker.downcallHandle(find(lib, "enclave_matmul"), FunctionDescriptor.ofVoid(I, P, J, J, J, P, J, P, J));
        repackedBytes = linker.downcallHandle(find(lib, "enclave_repacked_bytes"), FunctionDescriptor.of(J, I, J, J));
        repack = linker.downcallHandle(find(lib, "enclave_repack"), FunctionDescriptor.ofVoid(I, P, J, J, J, P));
        matmulRepacked = linker.downcallHandle(find(lib, "enclave_matmul_repacked"), FunctionDescriptor.ofVoid(I, P, J, J, J, P, J, P, J));
        repackedSupported = linker.downcallHandle(find(lib, "enclave_repacked_supported"), FunctionDescriptor.of(I));
        supports = linker.downcallHandle(find(lib, "enclave_supports"), FunctionDescriptor.of(I, I));
        dequantize = linker.downcallHandle(find(lib, "enclave_dequantize"), FunctionDescriptor.ofVoid(I, P, J, J, P));
        attends = linker.downcallHandle(find(lib, "enclave_attends"), FunctionDescriptor.of(I));
        attnScores = linker.downcallHandle(find(lib, "enclave_attn_scores"), FunctionDescriptor.ofVoid(I, P, P, I, P, I, I, I, F, F, P, I, I), HEAP);
        attnValues = linker.downcallHandle(find(lib, "enclave_attn_values"), FunctionDescriptor.ofVoid(I, P, P, I, P, I, I, I, I, P, I), HEAP);
        attendsQ = linker.downcallHandle(find(lib, "enclave_attends_quantized"), FunctionDescriptor.of(I));
        attnScoresQ = linker.downcallHandle(find(lib, "enclave_attn_scores_q"), FunctionDescriptor.ofVoid(I, P, P, P, I, P, I, I, I, F, F, P, I, I), HEAP);
        attnValuesQ = linker.downcallHandle(find(lib, "enclave_attn_values_q"), FunctionDescriptor.ofVoid(I, P, P, P, I, P, I, I, I, I, P, I), HEAP);
        try {
            refreshTypes();
            // the sizes are computed here without a call per product: they must be the library's
            for (long cols : new long[] {256, 768, 2048, 8192}) {
                if ((long) stride.invokeExact(cols) != actStride(cols)
                        || (long) halfBytes.invokeExact(cols, 3L) != NativeKernels.halfInputBytes((int) cols, 3)
                        || (long) repackedBytes.invokeExact(GGMLType.Q4_0.id, 32L, cols) != packedBytes(GGMLType.Q4_0, 32, cols)
                        || (long) repackedBytes.invokeExact(GGMLType.Q8_0.id, 32L, cols) != packedBytes(GGMLType.Q8_0, 32, cols)
                        || (long) repackedBytes.invokeExact(GGMLType.Q6_K.id, 32L, cols) != packedBytes(GGMLType.Q6_K, 32, cols)
                        || (long) repackedBytes.invokeExact(GGMLType.Q4_K.id, 32L, cols) != packedBytes(GGMLType.Q4_K, 32, cols)) {
                    throw new IllegalStateException("the native CPU library's layout is not this class's");
                }
            }
        } catch (IllegalStateException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("the native CPU kernels do not answer", t);
        }
    }

    private void refreshTypes() throws Throwable {
        q4 = (int) supports.invokeExact(GGMLType.Q4_0.id) != 0;
        q8 = (int) supports.invokeExact(GGMLType.Q8_0.id) != 0;
        q6k = (int) supports.invokeExact(GGMLType.Q6_K.id) != 0;
        q4k = (int) supports.invokeExact(GGMLType.Q4_K.id) != 0;
        f16 = (int) supports.invokeExact(GGMLType.F16.id) != 0;
        repacked = (int) repackedSupported.invokeExact() != 0;
        attention = (int) attends.invokeExact() != 0;
        attentionQ = (int) attendsQ.invokeExact() != 0;
    }

    /** enclave_act_stride: a token's int8 values, block scales, scaled sums and half-block sums, 64-byte aligned. */
    private static long actStride(long cols) {
        return (cols + 12 * (cols / 32) + 63) & ~63L;
    }

    /**
     * enclave_repacked_bytes: per 16 rows and block of 32, 16 float16 scales and the values (Q4_0 nibbles, Q8_0
     * bytes); Q6_K per 16 rows and super-block of 256, its own bytes (the same 210 per row); Q4_K per 16 rows and
     * super-block, d and dmin, then per 32 columns the scales and mins a byte each and the nibbles.
     */
    private static long packedBytes(GGMLType type, long rows, long cols) {
        if (type == GGMLType.Q6_K) return rows / GROUP * (cols / 256) * (32 + 8 * (32 + 256 + 128));
        if (type == GGMLType.Q4_K) return rows / GROUP * (cols / 256) * (64 + 8 * (32 + 256));
        return rows / GROUP * (cols / 32) * (32 + (type == GGMLType.Q4_0 ? 256 : 512));
    }

    /** The types enclave_matmul computes on every instruction set (whether or not it is the faster route). */
    static boolean takes(GGMLType type) {
        return repackable(type) || type == GGMLType.F16;
    }

    /** The types with a repacked layout (enclave_repack). */
    private static boolean repackable(GGMLType type) {
        return type == GGMLType.Q4_0 || type == GGMLType.Q8_0 || type == GGMLType.Q6_K || type == GGMLType.Q4_K;
    }

    private static MemorySegment find(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new IllegalStateException("the native CPU library lacks " + name));
    }

    /** The jar's library for this machine, copied to a temporary file (a library loads from a file). */
    static Path library() {
        String arch = switch (System.getProperty("os.arch", "").toLowerCase(Locale.ROOT)) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> throw new UnsupportedOperationException("no native CPU kernels for " + System.getProperty("os.arch"));
        };
        String resource = "native/linux-" + arch + "/libenclave_cpu.so";
        try (InputStream in = NativeCpuKernels.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null || !System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
                throw new UnsupportedOperationException("no native CPU kernels in this build for " + arch);
            }
            Path dir = privateDirectory();
            Path file = dir.resolve("libenclave_cpu.so");
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack the native CPU kernels", e);
        }
    }

    /**
     * A new directory of this process's own under java.io.tmpdir, owner-only. Not {@link Files#createTempDirectory}:
     * its random names come from a {@link java.security.SecureRandom}, whose first use loads and seeds the security
     * providers, work a start would do for nothing else. A name taken (or a link planted) is skipped, never followed:
     * creating the directory fails if anything is there.
     */
    private static Path privateDirectory() throws IOException {
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        long pid = ProcessHandle.current().pid();
        long nonce = System.nanoTime();
        for (int attempt = 0; ; attempt++) {
            Path dir = tmp.resolve("enclave-cpu-" + pid + "-" + Long.toHexString(nonce + attempt * 0x9E3779B97F4A7C15L));
            try {
                return Files.createDirectory(dir, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                        java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
            } catch (java.nio.file.FileAlreadyExistsException taken) {
                if (attempt == 100) throw taken;
            }
        }
    }

    @Override
    public String isa() {
        return isaName(isaCode());
    }

    int isaCode() {
        try {
            return (int) isa.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static String isaName(int code) {
        return switch (code) {
            case 1 -> "avx2";
            case 2 -> "avx512-vnni";
            case 3 -> "neon";
            case 4 -> "neon-dotprod";
            case 5 -> "neon-i8mm";
            default -> "baseline";
        };
    }

    @Override
    public boolean amx() {
        try {
            return (int) amx.invokeExact() != 0;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Sets how far ahead one-token products prefetch (bytes; 0 turns it off, and with it their several streams) for
     * tests; returns the distance before. The instruction set's choice (useIsa) sets it back to the CPU's.
     */
    long usePrefetch(long bytes) {
        try {
            return (long) setPrefetch.invokeExact(bytes);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Turns the AMX tiles on or off for tests (on only where the CPU and kernel allow them); returns whether they run. */
    boolean useAmx(boolean on) {
        try {
            return (int) setAmx.invokeExact(on ? 1 : 0) != 0;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Forces a slower instruction set for tests (0 baseline, 1 AVX2, 2 AVX-512 VNNI); returns the one in effect. */
    int useIsa(int code) {
        try {
            int got = (int) setIsa.invokeExact(code);
            refreshTypes();
            return got;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public boolean supports(GGMLType type) {
        return switch (type) {
            case Q4_0 -> q4;
            case Q8_0 -> q8;
            case Q6_K -> q6k;
            case Q4_K -> q4k;
            case F16 -> f16;
            default -> false;
        };
    }

    @Override
    public boolean attends() {
        return attention;
    }

    @Override
    public void attentionScores(boolean half, MemorySegment k, MemorySegment rows, int n, MemorySegment q, int qOff, int heads,
                                int headDim, float scale, float cap, MemorySegment att, int attOff, int attStride) {
        checkRows(k, half ? 2 : 4, rows, n, headDim);
        if (qOff < 0 || (qOff + (long) heads * headDim) * Float.BYTES > q.byteSize()) throw new IllegalArgumentException("native attention: query out of bounds");
        checkAtt(att, attOff, attStride, heads, n);
        try {
            attnScores.invokeExact(half ? 1 : 0, k, rows, n, q, qOff, heads, headDim, scale, cap, att, attOff, attStride);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void attentionValues(boolean half, MemorySegment v, MemorySegment rows, int n, MemorySegment att, int attOff, int attStride,
                                int heads, int headDim, MemorySegment out, int outOff) {
        checkRows(v, half ? 2 : 4, rows, n, headDim);
        if (outOff < 0 || (outOff + (long) heads * headDim) * Float.BYTES > out.byteSize()) throw new IllegalArgumentException("native attention: output out of bounds");
        checkAtt(att, attOff, attStride, heads, n);
        try {
            attnValues.invokeExact(half ? 1 : 0, v, rows, n, att, attOff, attStride, heads, headDim, out, outOff);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public boolean attendsQuantized() {
        return attentionQ;
    }

    @Override
    public void attentionScoresQ(int bits, MemorySegment qv, MemorySegment d, MemorySegment rows, int n, MemorySegment q, int qOff,
                                 int heads, int headDim, float scale, float cap, MemorySegment att, int attOff, int attStride) {
        checkQuantizedRows(bits, qv, d, rows, n, headDim);
        if (qOff < 0 || (qOff + (long) heads * headDim) * Float.BYTES > q.byteSize()) throw new IllegalArgumentException("native attention: query out of bounds");
        checkAtt(att, attOff, attStride, heads, n);
        try {
            attnScoresQ.invokeExact(bits, qv, d, rows, n, q, qOff, heads, headDim, scale, cap, att, attOff, attStride);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void attentionValuesQ(int bits, MemorySegment qv, MemorySegment d, MemorySegment rows, int n, MemorySegment att, int attOff,
                                 int attStride, int heads, int headDim, MemorySegment out, int outOff) {
        checkQuantizedRows(bits, qv, d, rows, n, headDim);
        if (outOff < 0 || (outOff + (long) heads * headDim) * Float.BYTES > out.byteSize()) throw new IllegalArgumentException("native attention: output out of bounds");
        checkAtt(att, attOff, attStride, heads, n);
        try {
            attnValuesQ.invokeExact(bits, qv, d, rows, n, att, attOff, attStride, heads, headDim, out, outOff);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void checkQuantizedRows(int bits, MemorySegment qv, MemorySegment d, MemorySegment rows, int n, int headDim) {
        if (bits != 8 && bits != 4 || headDim % 32 != 0 || headDim <= 0 || n < 0 || (long) n * Integer.BYTES > rows.byteSize()) {
            throw new IllegalArgumentException("native attention: " + bits + "-bit rows of " + headDim + ", " + n + " of them");
        }
        for (int t = 0; t < n; t++) {
            long r = rows.getAtIndex(ValueLayout.JAVA_INT, t);
            if (r < 0 || r % 32 != 0 || (r + headDim) * bits / 8 > qv.byteSize() || (r + headDim) / 32 * 2 > d.byteSize()) {
                throw new IllegalArgumentException("native attention: row " + r + " outside the cache");
            }
        }
    }

    // bounds are checked here, once per call: the C code trusts them

    private static void checkAtt(MemorySegment att, int attOff, int attStride, int heads, int n) {
        if (attOff < 0 || heads < 1 || n > attStride && heads > 1 || (attOff + (long) (heads - 1) * attStride + n) * Float.BYTES > att.byteSize()) {
            throw new IllegalArgumentException("native attention: scores out of bounds");
        }
    }

    private static void checkRows(MemorySegment kv, int elem, MemorySegment rows, int n, int headDim) {
        if (n < 0 || (long) n * Integer.BYTES > rows.byteSize() || headDim <= 0) throw new IllegalArgumentException("native attention: " + n + " rows");
        long limit = kv.byteSize() / elem - headDim;
        for (int t = 0; t < n; t++) {
            int r = rows.getAtIndex(ValueLayout.JAVA_INT, t);
            if (r < 0 || r > limit) throw new IllegalArgumentException("native attention: row " + r + " outside the cache");
        }
    }

    @Override
    public long activationBytes(int cols, int tokens) {
        return actStride(cols) * tokens;
    }

    @Override
    public void quantize(MemorySegment x, int cols, int tokens, MemorySegment dst) {
        if (cols % 32 != 0) throw new IllegalArgumentException(cols + " columns: not a multiple of 32");
        if (x.byteSize() < (long) cols * tokens * Float.BYTES || dst.byteSize() < activationBytes(cols, tokens)) {
            throw new IllegalArgumentException("buffers too small for " + tokens + " x " + cols);
        }
        try {
            quantize.invokeExact(x, (long) cols, (long) cols, (long) tokens, dst);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void toHalves(MemorySegment x, int cols, int tokens, MemorySegment dst) {
        if (cols < 0 || tokens < 0 || x.byteSize() < (long) cols * tokens * Float.BYTES || dst.byteSize() < NativeKernels.halfInputBytes(cols, tokens)) {
            throw new IllegalArgumentException("buffers too small for " + tokens + " x " + cols);
        }
        try {
            toHalves.invokeExact(x, (long) cols, (long) cols, (long) tokens, dst);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void matmul(GGMLType type, MemorySegment w, int cols, int r0, int r1, MemorySegment xq, int tokens, MemorySegment out, int outStride) {
        // bounds are checked here, once per call: the C code trusts them
        if (!takes(type) || cols % type.blockSize != 0 || r0 < 0 || r1 < r0 || tokens < 0
                || w.byteSize() < type.byteSize((long) r1 * cols)
                || xq.byteSize() < (type == GGMLType.F16 ? NativeKernels.halfInputBytes(cols, tokens) : activationBytes(cols, tokens))
                || tokens > 0 && r1 > r0 && out.byteSize() < ((long) (tokens - 1) * outStride + r1) * Float.BYTES) {
            throw new IllegalArgumentException("native " + type + " product out of bounds: rows [" + r0 + ", " + r1 + "), " + cols
                    + " columns, " + tokens + " tokens");
        }
        try {
            matmul.invokeExact(type.id, w, (long) cols, (long) r0, (long) r1, xq, (long) tokens, out, (long) outStride);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void dequantize(GGMLType type, MemorySegment w, long from, int n, MemorySegment out) {
        long end = from + n, blocks = (end + type.blockSize - 1) / type.blockSize;
        if (!takes(type) || from < 0 || n < 0 || w.byteSize() < blocks * type.blockBytes || out.byteSize() < (long) n * Float.BYTES) {
            throw new IllegalArgumentException("native dequantization of " + type + " out of bounds: [" + from + ", " + end + ")");
        }
        try {
            dequantize.invokeExact(type.id, w, from, (long) n, out);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public long repackedBytes(GGMLType type, int rows, int cols) {
        if (!repacked || !repackable(type) || !supports(type) || rows % GROUP != 0 || cols % type.blockSize != 0 || rows == 0) return 0;
        return packedBytes(type, rows, cols);
    }

    @Override
    public void repack(GGMLType type, MemorySegment w, int cols, int g0, int g1, MemorySegment dst) {
        long rows = (long) g1 * GROUP;
        if (!repackable(type) || cols % type.blockSize != 0 || g0 < 0 || g1 < g0 || w.byteSize() < type.byteSize(rows * cols) || dst.byteSize() < packedBytes(type, rows, cols)) {
            throw new IllegalArgumentException("native repack of " + type + " out of bounds: groups [" + g0 + ", " + g1 + "), " + cols + " columns");
        }
        try {
            repack.invokeExact(type.id, w, (long) cols, (long) g0, (long) g1, dst);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void matmulRepacked(GGMLType type, MemorySegment p, int cols, int g0, int g1, MemorySegment xq, int tokens, MemorySegment out, int outStride) {
        if (!repackable(type) || cols % type.blockSize != 0 || g0 < 0 || g1 < g0 || tokens < 0 || p.byteSize() < packedBytes(type, (long) g1 * GROUP, cols)
                || xq.byteSize() < activationBytes(cols, tokens)
                || tokens > 0 && g1 > g0 && out.byteSize() < ((long) (tokens - 1) * outStride + (long) g1 * GROUP) * Float.BYTES) {
            throw new IllegalArgumentException("native repacked " + type + " product out of bounds: groups [" + g0 + ", " + g1 + "), " + cols
                    + " columns, " + tokens + " tokens");
        }
        try {
            matmulRepacked.invokeExact(type.id, p, (long) cols, (long) g0, (long) g1, xq, (long) tokens, out, (long) outStride);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
