package dev.enclave.runtime.backend.cpu;

import dev.enclave.runtime.backend.HostKvStorage;
import dev.enclave.runtime.backend.KvRows;
import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.kv.RecentRows;

/**
 * Grouped-query attention over a KV cache stored in a compressed type (float16, 8- or 4-bit, rotated): the rows of one
 * KV head are decoded {@link #TILE} positions at a time into a buffer that stays in L1, and the float kernels of
 * {@link GroupedAttention} run on that tile, so each step reads the compressed bytes once and no decoded copy of the
 * cache is ever made. Rotated keys are met by rotating the query instead; rotated values by turning each head's
 * output back once at the end.
 */
final class CompressedAttention {

    static final int TILE = 64;

    /** One worker's buffers, grown on demand. */
    static final class Scratch {
        float[] query = new float[0];
        float[] tile = new float[0];
        /** Sketched keys: each head's projected query, and the sum of each. */
        float[] projected = new float[0];
        float[] projectedSum = new float[0];
        /** Transform-coded rows: one head's coefficients. */
        float[] coefficients = new float[0];
        /** Transform-coded keys rebuilt and turned, and values' coefficients, kept for the call ({@link CallRows}). */
        final CallRows keys = new CallRows(), values = new CallRows();
        /** The recent window's probabilities per head, while the values of the rest are summed. */
        float[] windowProbs = new float[0];
        final int[] tileRows = new int[TILE];
        private int rowsOf;

        void fit(int heads, int headDim) {
            if (query.length < heads * headDim) query = new float[heads * headDim];
            if (tile.length < TILE * headDim) tile = new float[TILE * headDim];
            if (projected.length < heads * headDim) projected = new float[heads * headDim];
            if (projectedSum.length < heads) projectedSum = new float[heads];
            if (coefficients.length < headDim) coefficients = new float[headDim];
            if (rowsOf != headDim) {
                for (int i = 0; i < TILE; i++) tileRows[i] = i * headDim;
                rowsOf = headDim;
            }
        }
    }

    private CompressedAttention() {
    }

    /**
     * Rows of one (storage, sequence, KV head) by position, kept for one attention call: a prompt chunk's tokens read
     * the same positions, so each transform-coded row is decoded once per call, not once per token.
     */
    static final class CallRows {
        float[] data = new float[0];
        int[] offsets = new int[0];
        private Object owner;
        private BlockTable table;
        private int head = -1, from, end;
        private long epoch = -1;

        /** Readies rows [first, pos] ({@link #offsets} from index 0); returns the first position the caller must fill. */
        int prepare(Object owner, BlockTable table, int head, long epoch, int first, int pos, int width) {
            if (this.epoch != epoch || this.owner != owner || this.table != table || this.head != head || first < from || first > end) {
                this.epoch = epoch;
                this.owner = owner;
                this.table = table;
                this.head = head;
                from = end = first;
            }
            int have = pos + 1 - from, n = pos - first + 1;
            if (data.length < have * width) data = java.util.Arrays.copyOf(data, Math.max(have * width, 2 * data.length));
            if (offsets.length < n) offsets = new int[Math.max(n, 2 * offsets.length)];
            for (int t = first; t <= pos; t++) offsets[t - first] = (t - from) * width;
            int start = end;
            end = Math.max(end, pos + 1);
            return start;
        }

        /** Where position t's row starts in {@link #data}. */
        int at(int t, int width) {
            return (t - from) * width;
        }
    }

    static void attend(HostKvStorage kv, BlockTable table, int kvHeadOff, float[] q, int qOff, float[] out, int outOff,
                       int heads, int headDim, int first, int pos, float scale, float cap, float[] att, int attOff,
                       int attStride, Scratch sc, NativeKernels nk, int[] rows, GroupedAttention.HeapSegments segs, long epoch) {
        sc.fit(heads, headDim);
        int n = pos - first + 1;
        float[] query = q;
        int qo = qOff;
        if (kv.keyRotation != null) {
            System.arraycopy(q, qOff, sc.query, 0, heads * headDim);
            for (int h = 0; h < heads; h++) kv.keyRotation.rotate(sc.query, h * headDim);
            query = sc.query;
            qo = 0;
        }
        // 8- and 4-bit rows: the native kernels widen a group's values in registers, prefetching the scattered rows
        boolean nativeKeys = nativeRows(nk, kv.keyRows, heads, headDim), nativeValues = nativeRows(nk, kv.valueRows, heads, headDim);
        if (nativeKeys || nativeValues) {
            for (int t = first; t <= pos; t++) rows[t - first] = table.offset(t) + kvHeadOff;
        }
        if (nativeKeys) {
            java.lang.foreign.MemorySegment[] k = segments(kv.keyRows);
            nk.attentionScoresQ(kv.keyRows instanceof KvRows.Q8 ? 8 : 4, k[0], k[1], segs.rows(rows), n, segs.q(query), qo, heads, headDim,
                    scale, cap, segs.att(att), attOff, attStride);
        } else {
            if (kv.keyRows instanceof KvRows.Coded coded) {
                codedScores(kv, coded, table, kvHeadOff, query, qo, heads, headDim, first, pos, scale, cap, att, attOff, attStride, sc, epoch);
            } else {
                tileScores(kv, table, kvHeadOff, query, qo, heads, headDim, first, n, scale, cap, att, attOff, attStride, sc);
            }
        }
        // the recent window (KIVI): its scores from the rows as written, its values added in the model's space below
        RecentRows recent = kv.window > 0 ? table.recentIfAny(kv) : null;
        int wFrom = recent == null ? pos + 1 : Math.max(first, pos - kv.window + 1);
        if (recent != null) windowScores(recent, wFrom, pos, kvHeadOff, q, qOff, heads, headDim, first, scale, cap, att, attOff, attStride);
        for (int h = 0; h < heads; h++) CpuBackend.softmax(att, attOff + h * attStride, n);
        int wn = pos + 1 - wFrom;
        if (recent != null) {
            if (sc.windowProbs.length < heads * wn) sc.windowProbs = new float[heads * wn];
            for (int h = 0; h < heads; h++) {
                for (int t = wFrom; t <= pos; t++) {
                    int a = attOff + h * attStride + t - first;
                    sc.windowProbs[h * wn + t - wFrom] = recent.has(t) ? att[a] : 0f;
                    if (recent.has(t)) att[a] = 0f;
                }
            }
        }
        if (nativeValues) {
            java.lang.foreign.MemorySegment[] v = segments(kv.valueRows);
            nk.attentionValuesQ(kv.valueRows instanceof KvRows.Q8 ? 8 : 4, v[0], v[1], segs.rows(rows), n, segs.att(att), attOff, attStride,
                    heads, headDim, segs.out(out), outOff);
        } else if (kv.valueRows instanceof KvRows.Coded coded) {
            CallRows vr = sc.values;
            for (int t = vr.prepare(coded, table, kvHeadOff / headDim, epoch, first, pos, headDim); t <= pos; t++) {
                coded.decode(table.slot(t), kvHeadOff, headDim, vr.data, vr.at(t, headDim));
            }
            GroupedAttention.values(vr.data, vr.offsets, n, headDim, att, attOff, attStride, heads, out, outOff, false);
        } else {
            float[] tile = sc.tile;
            for (int c = 0; c < n; c += TILE) {
                int m = Math.min(TILE, n - c);
                for (int i = 0; i < m; i++) kv.valueRows.decode(table.slot(first + c + i), kvHeadOff, headDim, tile, i * headDim);
                GroupedAttention.values(tile, sc.tileRows, m, headDim, att, attOff + c, attStride, heads, out, outOff, c > 0);
            }
        }
        if (kv.valueRotation != null) {
            for (int h = 0; h < heads; h++) kv.valueRotation.unrotate(out, outOff + h * headDim);
        }
        if (kv.valueRows instanceof KvRows.Coded coded) {
            // the weighted sum of coefficients, turned back once per head
            var code = coded.code(kvHeadOff / headDim);
            for (int h = 0; h < heads; h++) {
                System.arraycopy(out, outOff + h * headDim, sc.coefficients, 0, headDim);
                code.inverse(sc.coefficients, 0, out, outOff + h * headDim);
            }
        }
        if (recent != null) {
            float[] rv = recent.values();
            for (int h = 0; h < heads; h++) {
                for (int t = wFrom; t <= pos; t++) {
                    float p = sc.windowProbs[h * wn + t - wFrom];
                    if (p == 0f) continue;
                    int o = outOff + h * headDim, r = recent.offset(t) + kvHeadOff;
                    for (int i = 0; i < headDim; i++) out[o + i] += p * rv[r + i];
                    att[attOff + h * attStride + t - first] = p; // back, for heavy-hitter counting
                }
            }
        }
    }

    /** Scores of the window's positions from the full-precision keys (the query as given: not rotated). */
    private static void windowScores(RecentRows recent, int from, int pos, int kvHeadOff, float[] q, int qOff, int heads, int headDim,
                                     int first, float scale, float cap, float[] att, int attOff, int attStride) {
        float[] rk = recent.keys();
        for (int t = from; t <= pos; t++) {
            if (!recent.has(t)) continue;
            int r = recent.offset(t) + kvHeadOff;
            for (int h = 0; h < heads; h++) {
                int qo = qOff + h * headDim;
                float s = 0;
                for (int i = 0; i < headDim; i++) s += q[qo + i] * rk[r + i];
                s *= scale;
                if (cap > 0) s = (float) Math.tanh(s / cap) * cap;
                att[attOff + h * attStride + t - first] = s;
            }
        }
    }

    private static boolean nativeRows(NativeKernels nk, KvRows r, int heads, int headDim) {
        return nk != null && (r instanceof KvRows.Q8 || r instanceof KvRows.Q4) && heads % 4 == 0 && headDim % 32 == 0 && nk.attendsQuantized();
    }

    private static java.lang.foreign.MemorySegment[] segments(KvRows r) {
        return r instanceof KvRows.Q8 q8 ? q8.segments() : ((KvRows.Q4) r).segments();
    }

    /**
     * Scores over transform-coded keys: each position's key rebuilt from its coefficients and turned to its position,
     * into a buffer kept for the call ({@link Scratch#keys}), then the float kernels over all of them.
     */
    private static void codedScores(HostKvStorage kv, KvRows.Coded coded, BlockTable table, int kvHeadOff, float[] query, int qo, int heads,
                                    int headDim, int first, int pos, float scale, float cap, float[] att, int attOff, int attStride,
                                    Scratch sc, long epoch) {
        int kvHead = kvHeadOff / headDim;
        CallRows kr = sc.keys;
        var code = coded.code(kvHead);
        for (int t = kr.prepare(coded, table, kvHead, epoch, first, pos, headDim); t <= pos; t++) {
            int at = kr.at(t, headDim);
            coded.decode(table.slot(t), kvHeadOff, headDim, sc.coefficients, 0);
            code.inverse(sc.coefficients, 0, kr.data, at);
            kv.code.rope(kr.data, at, t);
        }
        GroupedAttention.scores(kr.data, kr.offsets, pos - first + 1, query, qo, heads, headDim, scale, cap, att, attOff, attStride);
    }

    /** The scores of a tile at a time: rows decoded into the L1 buffer, the float kernels on it. */
    private static void tileScores(HostKvStorage kv, BlockTable table, int kvHeadOff, float[] query, int qo, int heads, int headDim,
                                   int first, int n, float scale, float cap, float[] att, int attOff, int attStride, Scratch sc) {
        float[] tile = sc.tile;
        // sketched keys (QJL): the codes go through the float kernels, the sketch's part is added per score from the
        // projected query; a soft cap needs the whole score first, so it decodes the estimate into the tile instead
        KvRows.Sketched sketch = cap == 0f && kv.keyRows instanceof KvRows.Sketched s ? s : null;
        if (sketch != null) {
            for (int h = 0; h < heads; h++) sc.projectedSum[h] = sketch.project(query, qo + h * headDim, sc.projected, h * headDim);
        }
        int kvHead = kvHeadOff / headDim;
        for (int c = 0; c < n; c += TILE) {
            int m = Math.min(TILE, n - c);
            for (int i = 0; i < m; i++) {
                if (sketch != null) sketch.decodeCodes(table.slot(first + c + i), kvHeadOff, headDim, tile, i * headDim);
                else kv.keyRows.decode(table.slot(first + c + i), kvHeadOff, headDim, tile, i * headDim);
            }
            GroupedAttention.scores(tile, sc.tileRows, m, query, qo, heads, headDim, scale, cap, att, attOff + c, attStride);
            if (sketch != null) {
                for (int i = 0; i < m; i++) {
                    int slot = table.slot(first + c + i);
                    for (int h = 0; h < heads; h++) {
                        att[attOff + h * attStride + c + i] += scale * sketch.residualDot(slot, kvHead, sc.projected, h * headDim, sc.projectedSum[h]);
                    }
                }
            }
        }
    }
}
