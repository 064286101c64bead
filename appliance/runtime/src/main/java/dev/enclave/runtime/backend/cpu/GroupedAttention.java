package dev.enclave.runtime.backend.cpu;

import java.lang.foreign.MemorySegment;
import dev.enclave.runtime.backend.KvRows;


import dev.enclave.runtime.kv.BlockTable;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Scaled dot-product attention of one KV head's group of query heads (grouped-query attention) for one query token,
 * over positions [first, pos] of a sequence's paged KV cache.
 *
 * <p>Why a group at a time: Llama 3.2 1B has four query heads per KV head, and a head-at-a-time loop read every key
 * and value row four times; at a 1,000-token context attention was a fifth of a prompt's time (JFR of
 * {@code bench -p 1024}). Here each row is read once for four heads, and the weighted values accumulate in
 * registers instead of being loaded and stored back for every position. Per head the operations are those of a
 * head-at-a-time loop (the same FMAs in the same order, the same reduction): the builds before and after it gave the
 * same logits and the same greedy text.
 */
final class GroupedAttention {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private GroupedAttention() {
    }

    /**
     * @param q      query heads of the group at {@code qOff}, {@code qOff + headDim}, ...
     * @param out    the heads' outputs at {@code outOff}, {@code outOff + headDim}, ...
     * @param att    scratch for scores: head h of the group at {@code attOff + h * attStride}, n floats each
     * @param rows   scratch for the n positions' offsets in the KV arrays
     */
    static void attend(CpuBackend ops, float[] kc, float[] vc, BlockTable table, int kvHeadOff, float[] q, int qOff,
                       float[] out, int outOff, int heads, int headDim, int first, int pos, float scale, float cap,
                       float[] att, int attOff, int attStride, int[] rows) {
        int n = pos - first + 1;
        // the rows' offsets once, outside the vector loops: no call may sit between a loop's vector accumulators
        // (past the JIT's inlining budget they would be boxed on every position)
        for (int t = first; t <= pos; t++) rows[t - first] = table.offset(t) + kvHeadOff;
        scores(kc, rows, n, q, qOff, heads, headDim, scale, cap, att, attOff, attStride);
        for (int h = 0; h < heads; h++) CpuBackend.softmax(att, attOff + h * attStride, n);
        values(vc, rows, n, headDim, att, attOff, attStride, heads, out, outOff, false);
    }

    /** The group's scaled (and capped) scores against the n rows at {@code rows[]}: head h's at {@code attOff + h * attStride}. */
    static void scores(float[] kc, int[] rows, int n, float[] q, int qOff, int heads, int headDim, float scale, float cap,
                       float[] att, int attOff, int attStride) {
        int h = 0;
        for (; h + 4 <= heads; h += 4) {
            scores4(kc, rows, n, q, qOff + h * headDim, headDim, scale, cap, att, attOff + h * attStride, attStride);
        }
        for (; h < heads; h++) {
            scores1(kc, rows, n, q, qOff + h * headDim, headDim, scale, cap, att, attOff + h * attStride);
        }
    }

    /** The group's outputs: the n rows at {@code rows[]} weighted by each head's {@code att}; added to out when {@code add}. */
    static void values(float[] vc, int[] rows, int n, int headDim, float[] att, int attOff, int attStride, int heads,
                       float[] out, int outOff, boolean add) {
        int h = 0;
        for (; h + 4 <= heads; h += 4) {
            values4(vc, rows, n, headDim, att, attOff + h * attStride, attStride, out, outOff + h * headDim, add);
        }
        for (; h < heads; h++) {
            values1(vc, rows, n, headDim, att, attOff + h * attStride, out, outOff + h * headDim, add);
        }
    }

    private static float capped(float score, float scale, float cap) {
        score *= scale;
        return cap > 0f ? (float) Math.tanh(score / cap) * cap : score;
    }

    private static void scores1(float[] kc, int[] rows, int n, float[] q, int qo, int headDim, float scale, float cap,
                                float[] att, int a) {
        int vec = headDim >= F.length() ? headDim - headDim % F.length() : 0;
        for (int at = 0; at < n; at++) {
            int k = rows[at];
            float s = 0;
            if (vec > 0) {
                FloatVector acc = FloatVector.zero(F);
                for (int i = 0; i < vec; i += F.length()) {
                    acc = FloatVector.fromArray(F, q, qo + i).fma(FloatVector.fromArray(F, kc, k + i), acc);
                }
                s = acc.reduceLanes(VectorOperators.ADD);
            }
            for (int i = vec; i < headDim; i++) s += q[qo + i] * kc[k + i];
            att[a + at] = capped(s, scale, cap);
        }
    }

    /** Four heads' scores: each key row is loaded once (from L1 for the other three). */
    private static void scores4(float[] kc, int[] rows, int n, float[] q, int qo, int headDim, float scale, float cap,
                                float[] att, int a, int stride) {
        int vec = headDim >= F.length() ? headDim - headDim % F.length() : 0;
        int q1 = qo + headDim, q2 = q1 + headDim, q3 = q2 + headDim;
        for (int at = 0; at < n; at++) {
            int k = rows[at];
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            if (vec > 0) {
                FloatVector z = FloatVector.zero(F);
                FloatVector c0 = z, c1 = z, c2 = z, c3 = z;
                for (int i = 0; i < vec; i += F.length()) {
                    FloatVector kv = FloatVector.fromArray(F, kc, k + i);
                    c0 = FloatVector.fromArray(F, q, qo + i).fma(kv, c0);
                    c1 = FloatVector.fromArray(F, q, q1 + i).fma(kv, c1);
                    c2 = FloatVector.fromArray(F, q, q2 + i).fma(kv, c2);
                    c3 = FloatVector.fromArray(F, q, q3 + i).fma(kv, c3);
                }
                s0 = c0.reduceLanes(VectorOperators.ADD);
                s1 = c1.reduceLanes(VectorOperators.ADD);
                s2 = c2.reduceLanes(VectorOperators.ADD);
                s3 = c3.reduceLanes(VectorOperators.ADD);
            }
            for (int i = vec; i < headDim; i++) {
                float kv = kc[k + i];
                s0 += q[qo + i] * kv;
                s1 += q[q1 + i] * kv;
                s2 += q[q2 + i] * kv;
                s3 += q[q3 + i] * kv;
            }
            att[a + at] = capped(s0, scale, cap);
            att[a + stride + at] = capped(s1, scale, cap);
            att[a + 2 * stride + at] = capped(s2, scale, cap);
            att[a + 3 * stride + at] = capped(s3, scale, cap);
        }
    }

    private static void values1(float[] vc, int[] rows, int n, int headDim, float[] att, int a, float[] out, int o,
                                boolean add) {
        int vec = headDim >= F.length() ? headDim - headDim % F.length() : 0;
        for (int i = 0; i < vec; i += F.length()) {
            FloatVector acc = add ? FloatVector.fromArray(F, out, o + i) : FloatVector.zero(F);
            for (int at = 0; at < n; at++) {
                acc = FloatVector.fromArray(F, vc, rows[at] + i).fma(FloatVector.broadcast(F, att[a + at]), acc);
            }
            acc.intoArray(out, o + i);
        }
        for (int i = vec; i < headDim; i++) {
            float s = add ? out[o + i] : 0;
            for (int at = 0; at < n; at++) s += att[a + at] * vc[rows[at] + i];
            out[o + i] = s;
        }
    }

    /** Four heads' weighted values, one slice of the head dimension at a time, accumulated in registers. */
    private static void values4(float[] vc, int[] rows, int n, int headDim, float[] att, int a, int stride, float[] out,
                                int o, boolean add) {
        int vec = headDim >= F.length() ? headDim - headDim % F.length() : 0;
        int a1 = a + stride, a2 = a1 + stride, a3 = a2 + stride;
        for (int i = 0; i < vec; i += F.length()) {
            FloatVector c0, c1, c2, c3;
            if (add) {
                c0 = FloatVector.fromArray(F, out, o + i);
                c1 = FloatVector.fromArray(F, out, o + headDim + i);
                c2 = FloatVector.fromArray(F, out, o + 2 * headDim + i);
                c3 = FloatVector.fromArray(F, out, o + 3 * headDim + i);
            } else {
                c0 = c1 = c2 = c3 = FloatVector.zero(F);
            }
            for (int at = 0; at < n; at++) {
                FloatVector v = FloatVector.fromArray(F, vc, rows[at] + i);
                c0 = v.fma(FloatVector.broadcast(F, att[a + at]), c0);
                c1 = v.fma(FloatVector.broadcast(F, att[a1 + at]), c1);
                c2 = v.fma(FloatVector.broadcast(F, att[a2 + at]), c2);
                c3 = v.fma(FloatVector.broadcast(F, att[a3 + at]), c3);
            }
            c0.intoArray(out, o + i);
            c1.intoArray(out, o + headDim + i);
            c2.intoArray(out, o + 2 * headDim + i);
            c3.intoArray(out, o + 3 * headDim + i);
        }
        for (int i = vec; i < headDim; i++) {
            float s0 = add ? out[o + i] : 0, s1 = add ? out[o + headDim + i] : 0;
            float s2 = add ? out[o + 2 * headDim + i] : 0, s3 = add ? out[o + 3 * headDim + i] : 0;
            for (int at = 0; at < n; at++) {
                float v = vc[rows[at] + i];
                s0 += att[a + at] * v;
                s1 += att[a1 + at] * v;
                s2 += att[a2 + at] * v;
                s3 += att[a3 + at] * v;
            }
            out[o + i] = s0;
            out[o + headDim + i] = s1;
            out[o + 2 * headDim + i] = s2;
            out[o + 3 * headDim + i] = s3;
        }
    }

    // ---- float16 rows read directly: half the bytes of float32, converted in registers ----

    private static final jdk.incubator.vector.VectorSpecies<Short> H =
            jdk.incubator.vector.VectorSpecies.of(short.class, jdk.incubator.vector.VectorShape.forBitSize(F.length() * 16));
    private static final jdk.incubator.vector.VectorSpecies<Integer> I = jdk.incubator.vector.VectorSpecies.of(int.class, F.vectorShape());

    /** IEEE halves to floats, in registers (finite values; the 2^112 rebase gets subnormals right too). */
    private static FloatVector halves(short[] a, int off) {
        jdk.incubator.vector.IntVector h = (jdk.incubator.vector.IntVector) jdk.incubator.vector.ShortVector.fromArray(H, a, off)
                .convertShape(VectorOperators.S2I, I, 0);
        return h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                .reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    /** Whether {@link #attendHalf} can run heads of {@code headDim} at this vector width. */
    static boolean halfFits(int headDim, int heads) {
        return headDim % F.length() == 0 && heads % 4 == 0;
    }

    /** As {@link #attend} over float16 rows (unrotated f16 keys and values); heads a multiple of 4. */
    static void attendHalf(short[] kc, short[] vc, BlockTable table, int kvHeadOff, float[] q, int qOff, float[] out, int outOff,
                           int heads, int headDim, int first, int pos, float scale, float cap, float[] att, int attOff,
                           int attStride, int[] rows) {
        int n = pos - first + 1;
        for (int t = first; t <= pos; t++) rows[t - first] = table.offset(t) + kvHeadOff;
        for (int h = 0; h < heads; h += 4) {
            scores4Half(kc, rows, n, q, qOff + h * headDim, headDim, scale, cap, att, attOff + h * attStride, attStride);
        }
        for (int h = 0; h < heads; h++) CpuBackend.softmax(att, attOff + h * attStride, n);
        for (int h = 0; h < heads; h += 4) {
            values4Half(vc, rows, n, headDim, att, attOff + h * attStride, attStride, out, outOff + h * headDim);
        }
    }

    /**
     * As {@link #attend} and {@link #attendHalf}, with the scores and the weighted values in the native library (its
     * float16 widening, and prefetching of the scattered rows): {@code k}/{@code v} the cache's arrays as heap segments
     * (float16 when {@code half}), the other arrays passed through {@link HeapSegments}.
     */
    static void attendNative(NativeKernels nk, boolean half, MemorySegment k, MemorySegment v, BlockTable table, int kvHeadOff,
                             float[] q, int qOff, float[] out, int outOff, int heads, int headDim, int first, int pos, float scale,
                             float cap, float[] att, int attOff, int attStride, int[] rows, HeapSegments segs) {
        int n = pos - first + 1;
        for (int t = first; t <= pos; t++) rows[t - first] = table.offset(t) + kvHeadOff;
        MemorySegment r = segs.rows(rows), a = segs.att(att);
        nk.attentionScores(half, k, r, n, segs.q(q), qOff, heads, headDim, scale, cap, a, attOff, attStride);
        for (int h = 0; h < heads; h++) CpuBackend.softmax(att, attOff + h * attStride, n);
        nk.attentionValues(half, v, r, n, a, attOff, attStride, heads, headDim, segs.out(out), outOff);
    }

    /** One thread's heap segments over the arrays it last passed to native attention (remade when an array changes). */
    static final class HeapSegments {
        private final Object[] arrays = new Object[4];
        private final MemorySegment[] segments = new MemorySegment[4];

        MemorySegment rows(int[] a) {
            return a == arrays[0] ? segments[0] : remember(0, a, MemorySegment.ofArray(a));
        }

        MemorySegment att(float[] a) {
            return a == arrays[1] ? segments[1] : remember(1, a, MemorySegment.ofArray(a));
        }

        MemorySegment q(float[] a) {
            return a == arrays[2] ? segments[2] : remember(2, a, MemorySegment.ofArray(a));
        }

        MemorySegment out(float[] a) {
            return a == arrays[3] ? segments[3] : remember(3, a, MemorySegment.ofArray(a));
        }

        private MemorySegment remember(int i, Object array, MemorySegment segment) {
            arrays[i] = array;
            segments[i] = segment;
            return segment;
        }
    }


    private static void scores4Half(short[] kc, int[] rows, int n, float[] q, int qo, int headDim, float scale, float cap,
                                    float[] att, int a, int stride) {
        int q1 = qo + headDim, q2 = q1 + headDim, q3 = q2 + headDim;
        for (int at = 0; at < n; at++) {
            int k = rows[at];
            FloatVector z = FloatVector.zero(F);
            FloatVector c0 = z, c1 = z, c2 = z, c3 = z;
            for (int i = 0; i < headDim; i += F.length()) {
                FloatVector kv = halves(kc, k + i);
                c0 = FloatVector.fromArray(F, q, qo + i).fma(kv, c0);
                c1 = FloatVector.fromArray(F, q, q1 + i).fma(kv, c1);
                c2 = FloatVector.fromArray(F, q, q2 + i).fma(kv, c2);
                c3 = FloatVector.fromArray(F, q, q3 + i).fma(kv, c3);
            }
            att[a + at] = capped(c0.reduceLanes(VectorOperators.ADD), scale, cap);
            att[a + stride + at] = capped(c1.reduceLanes(VectorOperators.ADD), scale, cap);
            att[a + 2 * stride + at] = capped(c2.reduceLanes(VectorOperators.ADD), scale, cap);
            att[a + 3 * stride + at] = capped(c3.reduceLanes(VectorOperators.ADD), scale, cap);
        }
    }

    private static void values4Half(short[] vc, int[] rows, int n, int headDim, float[] att, int a, int stride, float[] out, int o) {
        int a1 = a + stride, a2 = a1 + stride, a3 = a2 + stride;
        for (int i = 0; i < headDim; i += F.length()) {
            FloatVector z = FloatVector.zero(F);
            FloatVector c0 = z, c1 = z, c2 = z, c3 = z;
            for (int at = 0; at < n; at++) {
                FloatVector v = halves(vc, rows[at] + i);
                c0 = v.fma(FloatVector.broadcast(F, att[a + at]), c0);
                c1 = v.fma(FloatVector.broadcast(F, att[a1 + at]), c1);
                c2 = v.fma(FloatVector.broadcast(F, att[a2 + at]), c2);
                c3 = v.fma(FloatVector.broadcast(F, att[a3 + at]), c3);
            }
            c0.intoArray(out, o + i);
            c1.intoArray(out, o + headDim + i);
            c2.intoArray(out, o + 2 * headDim + i);
            c3.intoArray(out, o + 3 * headDim + i);
        }
    }
}
