package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.util.ServiceLoader;

/**
 * Products the CPU's int8 dot-product instructions compute (x86 VNNI, AVX2, Arm dotprod), which the Vector API
 * cannot emit: a native library called through {@code java.lang.foreign} (module cpu-backend), found with
 * {@link ServiceLoader}. Weights stay in ggml's block layout in the mapped file; activations are quantized once per
 * product to int8 blocks of 32. Where no library exists for this CPU, the Java kernels run instead, and they are the
 * reference the native ones are tested against ({@code BackendConformanceTest}).
 */
public interface NativeKernels {

    /** The instruction set in use: "avx512-vnni", "avx2", "neon-dotprod", "neon" or "baseline". */
    String isa();

    /**
     * Whether a prompt's products on repacked Q4_0, Q8_0 and Q4_K matrices run on the CPU's tile unit (Intel AMX-INT8, 16 tokens x 16 rows
     * x 32 columns an instruction), where the CPU has one and Linux grants its state; the same floats as without.
     */
    default boolean amx() {
        return false;
    }

    /** Whether {@link #matmul} takes weights of this type. */
    boolean supports(GGMLType type);

    /** Bytes {@link #quantize} writes for {@code tokens} vectors of {@code cols} values. */
    long activationBytes(int cols, int tokens);

    /** Quantizes {@code tokens} float vectors ({@code x}, {@code cols} apart) into {@code dst}. */
    void quantize(MemorySegment x, int cols, int tokens, MemorySegment dst);

    /**
     * {@code tokens} float vectors ({@code x}, {@code cols} apart) as the input of an F16 product into {@code dst}
     * ({@link #halfInputBytes}): IEEE half-precision values rounded to nearest even, as ggml's F16 product takes them,
     * {@code cols} apart; then, 64-byte aligned ({@link #halfInputFloats}), the same values widened to floats (what a
     * prompt's vector tiles load); then, where {@code cols} is a multiple of 32, room for the same values split for
     * AMX tiles (written where a prompt's products run on them).
     */
    void toHalves(MemorySegment x, int cols, int tokens, MemorySegment dst);

    /** Bytes {@link #toHalves} writes (the library's enclave_half_bytes, checked against it when it loads). */
    static long halfInputBytes(int cols, int tokens) {
        long tiles = cols % 32 == 0 ? 4L * cols * ((tokens + 15) / 16 * 16) : 0;
        return halfInputFloats(cols, tokens) + ((4L * cols * tokens + 63) & ~63L) + tiles;
    }

    /** Where in {@link #toHalves}'s output the widened floats start. */
    static long halfInputFloats(int cols, int tokens) {
        return (2L * cols * tokens + 63) & ~63L;
    }

    /**
     * {@code out[t * outStride + r] = dot(w row r, token t)} for rows [r0, r1) and every token: {@code w} the whole
     * matrix in ggml's layout, {@code xq} what {@link #quantize} wrote, or for {@link #takesHalves} types what
     * {@link #toHalves} wrote.
     */
    void matmul(GGMLType type, MemorySegment w, int cols, int r0, int r1, MemorySegment xq, int tokens, MemorySegment out, int outStride);

    /**
     * Bytes of {@code type}'s matrix repacked for this CPU's fastest product (rows across the vector lanes, 16 rows to a
     * group), or 0 when this CPU has no such product or the shape does not fit.
     */
    long repackedBytes(GGMLType type, int rows, int cols);

    /** Repacks row groups [g0, g1) of {@code w} into {@code dst} (of {@link #repackedBytes}). */
    void repack(GGMLType type, MemorySegment w, int cols, int g0, int g1, MemorySegment dst);

    /** As {@link #matmul}, on a repacked matrix, for row groups [g0, g1) (16 rows each). */
    void matmulRepacked(GGMLType type, MemorySegment p, int cols, int g0, int g1, MemorySegment xq, int tokens, MemorySegment out, int outStride);

    /**
     * Values [from, from + n) of {@code w} (ggml's layout, a type {@link #matmul} takes) as floats into {@code out}: an
     * embedding row, rounded as ggml's dequantization rounds.
     */
    void dequantize(GGMLType type, MemorySegment w, long from, int n, MemorySegment out);

    /**
     * Whether the attention kernels ({@link #attentionScores}, {@link #attentionValues}) have a vector path
     * on this CPU (else Java's kernels are faster).
     */
    default boolean attends() {
        return false;
    }

    /**
     * Attention scores for one KV head's group of query heads: {@code att[attOff + h * attStride + t] = scale * dot(q head
     * h, the key at k[rows[t] ..])}, soft-capped ({@code cap * tanh(s / cap)}) when {@code cap > 0}; keys float16
     * ({@code half}) or float32; {@code q} holds the heads {@code headDim} apart from {@code qOff}. The segments are the
     * heap arrays themselves ({@code MemorySegment.ofArray}), offsets in elements.
     */
    default void attentionScores(boolean half, MemorySegment k, MemorySegment rows, int n, MemorySegment q, int qOff, int heads,
                                 int headDim, float scale, float cap, MemorySegment att, int attOff, int attStride) {
        throw new UnsupportedOperationException("no native attention here");
    }

    /** {@code out[outOff + h * headDim + i] = sum over t of att[attOff + h * attStride + t] * v[rows[t] + i]}. */
    default void attentionValues(boolean half, MemorySegment v, MemorySegment rows, int n, MemorySegment att, int attOff, int attStride,
                                 int heads, int headDim, MemorySegment out, int outOff) {
        throw new UnsupportedOperationException("no native attention here");
    }

    /** Whether {@link #attentionScoresQ} and {@link #attentionValuesQ} have a vector path on this CPU. */
    default boolean attendsQuantized() {
        return false;
    }

    /**
     * As {@link #attentionScores} over 8-bit ({@code bits} 8) or 4-bit rows in ggml's Q8_0/Q4_0 rounding, values
     * {@code qv} (bytes; two 4-bit values a byte, value j and j + 16 of a group of 32) and one float16 scale per 32
     * values {@code d} stored apart; {@code rows[t]} the value offset of position t's head, a multiple of 32.
     */
    default void attentionScoresQ(int bits, MemorySegment qv, MemorySegment d, MemorySegment rows, int n, MemorySegment q, int qOff,
                                  int heads, int headDim, float scale, float cap, MemorySegment att, int attOff, int attStride) {
        throw new UnsupportedOperationException("no native attention here");
    }

    /** As {@link #attentionValues} over 8-bit or 4-bit rows. */
    default void attentionValuesQ(int bits, MemorySegment qv, MemorySegment d, MemorySegment rows, int n, MemorySegment att, int attOff,
                                  int attStride, int heads, int headDim, MemorySegment out, int outOff) {
        throw new UnsupportedOperationException("no native attention here");
    }

    /**
     * Whether {@link #matmul} of this type takes the activations in half precision rather than quantized (F16 weights:
     * ggml's F16 product rounds them so too; half the bytes keep a wide input in L1 beside the weights' stream).
     */
    static boolean takesHalves(GGMLType type) {
        return type == GGMLType.F16;
    }

    /** Rows per group of a repacked matrix. */
    int GROUP = 16;

    /** The library for this CPU, or null when there is none (then the Java kernels run). */
    static NativeKernels load() {
        for (NativeKernels k : ServiceLoader.load(NativeKernels.class)) return k;
        return null;
    }
}
