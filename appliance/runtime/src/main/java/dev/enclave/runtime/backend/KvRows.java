package dev.enclave.runtime.backend;

import dev.enclave.runtime.quant.Quantizer;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * One KV tensor of a layer (its keys, or its values) in the heap: {@code positions} rows of {@code kvDim} values in
 * one {@link KvFormat}. Each format is a small class with its layout beside its encoder and decoder. Rows are
 * written once per token ({@link #write}); attention reads a head's slice of many rows with {@link #decode}, a few
 * rows at a time into a small buffer that stays in L1, so the cache is never decoded as a whole.
 */
public abstract sealed class KvRows permits KvRows.F32, KvRows.F16, KvRows.Q8, KvRows.Q4, KvRows.Codebook, KvRows.Sketched, KvRows.PerHead, KvRows.Coded {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Bytes loaded for one float vector of int8 values: as many lanes, or 8 for a 4-lane vector. */
    static final VectorSpecies<Byte> B = F.length() >= 16 ? ByteVector.SPECIES_128 : ByteVector.SPECIES_64;
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.length() * 16));
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Padding past the last row, so a vector load of the last group stays inside the array. */
    static final int PAD = 16;

    final int kvDim;
    final int group;
    final int positions;

    KvRows(int positions, int kvDim, int headDim) {
        this.positions = positions;
        this.kvDim = kvDim;
        this.group = KvFormat.group(headDim);
    }

    public static KvRows of(KvFormat format, int positions, int kvDim, int headDim) {
        long values = (long) positions * kvDim;
        if (values > Integer.MAX_VALUE - 64) throw new IllegalArgumentException("KV storage of " + positions + " positions is too large for one array");
        return switch (format) {
            case F32 -> new F32(positions, kvDim, headDim);
            case F16 -> new F16(positions, kvDim, headDim);
            case Q8 -> new Q8(positions, kvDim, headDim);
            case Q4 -> new Q4(positions, kvDim, headDim);
            case Q3 -> new Codebook(KvFormat.Q3, Codebook.GAUSS3, positions, kvDim, headDim);
            case Q2 -> new Codebook(KvFormat.Q2, Codebook.GAUSS2, positions, kvDim, headDim);
            case Q3J -> new Sketched(KvFormat.Q3J, new Codebook(KvFormat.Q2, Codebook.GAUSS2, positions, kvDim, headDim), headDim);
            case Q4J -> new Sketched(KvFormat.Q4J, new Codebook(KvFormat.Q3, Codebook.GAUSS3, positions, kvDim, headDim), headDim);
            case TC -> throw new IllegalArgumentException("transform-coded rows are made from their code (KvRows.coded)");
        };
    }

    /** A tensor stored as transform codes, one per KV head. */
    public static KvRows coded(KvTransformCode[] heads, int positions, int kvDim, int headDim) {
        if (heads.length * headDim != kvDim) throw new IllegalArgumentException(heads.length + " head codes for " + kvDim / headDim + " KV heads");
        return new Coded(heads, positions, kvDim, headDim);
    }

    /** A tensor whose KV heads each have their own format: one row store per head, {@code headDim} values a row. */
    public static KvRows perHead(java.util.List<KvFormat> formats, int positions, int kvDim, int headDim) {
        if (formats.size() * headDim != kvDim) throw new IllegalArgumentException(formats.size() + " head formats for " + kvDim / headDim + " KV heads");
        KvRows[] heads = new KvRows[formats.size()];
        for (int h = 0; h < heads.length; h++) heads[h] = of(formats.get(h), positions, headDim, headDim);
        return new PerHead(heads, positions, kvDim, headDim);
    }

    public abstract KvFormat format();

    /** Stores {@code kvDim} values from {@code src[off..]} as row {@code slot}. */
    public abstract void write(int slot, float[] src, int off);

    /** Decodes values [from, from + n) of row {@code slot} (whole groups) into {@code dst[dstOff..]}. */
    public abstract void decode(int slot, int from, int n, float[] dst, int dstOff);

    /** Copies {@code count} rows from row {@code from} to row {@code to}. */
    public abstract void copy(int from, int to, int count);

    public abstract long bytes();

    /** Float32 rows: what the attention kernels read directly. */
    public static final class F32 extends KvRows {
        public final float[] data;
        /** {@link #data} as a heap segment, for the native attention kernels (made once). */
        private volatile java.lang.foreign.MemorySegment segment;

        public java.lang.foreign.MemorySegment segment() {
            java.lang.foreign.MemorySegment s = segment;
            if (s == null) segment = s = java.lang.foreign.MemorySegment.ofArray(data);
            return s;
        }

        F32(int positions, int kvDim, int headDim) {
            super(positions, kvDim, headDim);
            data = new float[positions * kvDim];
        }

        public KvFormat format() {
            return KvFormat.F32;
        }

        public void write(int slot, float[] src, int off) {
            System.arraycopy(src, off, data, slot * kvDim, kvDim);
        }

        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            System.arraycopy(data, slot * kvDim + from, dst, dstOff, n);
        }

        public void copy(int from, int to, int count) {
            System.arraycopy(data, from * kvDim, data, to * kvDim, count * kvDim);
        }

        public long bytes() {
            return 4L * positions * kvDim;
        }
    }

    /** Float16 rows (IEEE half, round to nearest even as ggml). */
    public static final class F16 extends KvRows {
        public final short[] data;
        /** {@link #data} as a heap segment, for the native attention kernels (made once). */
        private volatile java.lang.foreign.MemorySegment segment;

        public java.lang.foreign.MemorySegment segment() {
            java.lang.foreign.MemorySegment s = segment;
            if (s == null) segment = s = java.lang.foreign.MemorySegment.ofArray(data);
            return s;
        }

        F16(int positions, int kvDim, int headDim) {
            super(positions, kvDim, headDim);
            data = new short[positions * kvDim + PAD];
        }

        public KvFormat format() {
            return KvFormat.F16;
        }

        public void write(int slot, float[] src, int off) {
            int o = slot * kvDim;
            for (int i = 0; i < kvDim; i++) data[o + i] = Float.floatToFloat16(src[off + i]);
        }

        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            int o = slot * kvDim + from;
            int i = 0;
            if (S.length() == F.length() && I.length() == F.length()) {
                for (; i + F.length() <= n; i += F.length()) {
                    IntVector h = (IntVector) ShortVector.fromArray(S, data, o + i).convertShape(VectorOperators.S2I, I, 0);
                    // magnitude into a float's exponent and mantissa, rebased by 2^112 (subnormals come out right too)
                    FloatVector mag = h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
                    IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
                    mag.reinterpretAsInts().or(sign).reinterpretAsFloats().intoArray(dst, dstOff + i);
                }
            }
            for (; i < n; i++) dst[dstOff + i] = Float.float16ToFloat(data[o + i]);
        }

        public void copy(int from, int to, int count) {
            System.arraycopy(data, from * kvDim, data, to * kvDim, count * kvDim);
        }

        public long bytes() {
            return 2L * positions * kvDim;
        }
    }

    /** 8-bit rows: per group, q = round(x / d) with d = max|x| / 127 (ggml's Q8_0), d kept as float16. */
    public static final class Q8 extends KvRows {
        final byte[] q;
        final short[] d;
        private final int groups;
        /** {@link #q} and {@link #d} as heap segments, for the native attention kernels (made once). */
        private volatile java.lang.foreign.MemorySegment[] segments;

        /** The values and the scales as heap segments. */
        public java.lang.foreign.MemorySegment[] segments() {
            java.lang.foreign.MemorySegment[] s = segments;
            if (s == null) segments = s = new java.lang.foreign.MemorySegment[] {java.lang.foreign.MemorySegment.ofArray(q), java.lang.foreign.MemorySegment.ofArray(d)};
            return s;
        }

        Q8(int positions, int kvDim, int headDim) {
            super(positions, kvDim, headDim);
            groups = kvDim / group;
            q = new byte[positions * kvDim + PAD];
            d = new short[positions * groups];
        }

        public KvFormat format() {
            return KvFormat.Q8;
        }

        public void write(int slot, float[] src, int off) {
            for (int g = 0; g < groups; g++) {
                d[slot * groups + g] = Quantizer.q8Group(src, off + g * group, group, q, slot * kvDim + g * group);
            }
        }

        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            int L = F.length();
            boolean vector = group % L == 0;
            for (int g = from / group, end = (from + n) / group; g < end; g++) {
                float scale = Float.float16ToFloat(d[slot * groups + g]);
                int o = slot * kvDim + g * group;
                int to = dstOff + g * group - from;
                if (vector) {
                    FloatVector s = FloatVector.broadcast(F, scale);
                    for (int j = 0; j < group; j += L) {
                        ((FloatVector) ByteVector.fromArray(B, q, o + j).convertShape(VectorOperators.B2F, F, 0)).mul(s).intoArray(dst, to + j);
                    }
                } else {
                    for (int j = 0; j < group; j++) dst[to + j] = q[o + j] * scale;
                }
            }
        }

        public void copy(int from, int to, int count) {
            System.arraycopy(q, from * kvDim, q, to * kvDim, count * kvDim);
            System.arraycopy(d, from * groups, d, to * groups, count * groups);
        }

        public long bytes() {
            return (long) positions * kvDim + 2L * positions * groups;
        }
    }

    /**
     * 4-bit rows as ggml's Q4_0: per group, d = (the value of largest magnitude) / -8, q = x / d + 8 in [0, 15]; byte j
     * of a group holds value j in its low nibble and value j + group/2 in its high one; d kept as float16.
     */
    public static final class Q4 extends KvRows {
        final byte[] q;
        final short[] d;
        private final int groups;
        /** {@link #q} and {@link #d} as heap segments, for the native attention kernels (made once). */
        private volatile java.lang.foreign.MemorySegment[] segments;

        /** The values and the scales as heap segments. */
        public java.lang.foreign.MemorySegment[] segments() {
            java.lang.foreign.MemorySegment[] s = segments;
            if (s == null) segments = s = new java.lang.foreign.MemorySegment[] {java.lang.foreign.MemorySegment.ofArray(q), java.lang.foreign.MemorySegment.ofArray(d)};
            return s;
        }

        Q4(int positions, int kvDim, int headDim) {
            super(positions, kvDim, headDim);
            groups = kvDim / group;
            q = new byte[positions * kvDim / 2 + PAD];
            d = new short[positions * groups];
        }

        public KvFormat format() {
            return KvFormat.Q4;
        }

        public void write(int slot, float[] src, int off) {
            for (int g = 0; g < groups; g++) {
                d[slot * groups + g] = Quantizer.q4Group(src, off + g * group, group, q, (slot * kvDim + g * group) / 2);
            }
        }

        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            int L = F.length();
            int half = group / 2;
            boolean vector = half % L == 0;
            for (int g = from / group, end = (from + n) / group; g < end; g++) {
                float scale = Float.float16ToFloat(d[slot * groups + g]);
                int o = (slot * kvDim + g * group) / 2;
                int to = dstOff + g * group - from;
                if (vector) {
                    FloatVector s = FloatVector.broadcast(F, scale);
                    for (int j = 0; j < half; j += L) {
                        ByteVector b = ByteVector.fromArray(B, q, o + j);
                        ByteVector lo = b.and((byte) 0x0F).sub((byte) 8);
                        ByteVector hi = b.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
                        ((FloatVector) lo.convertShape(VectorOperators.B2F, F, 0)).mul(s).intoArray(dst, to + j);
                        ((FloatVector) hi.convertShape(VectorOperators.B2F, F, 0)).mul(s).intoArray(dst, to + half + j);
                    }
                } else {
                    for (int j = 0; j < half; j++) {
                        int b = q[o + j] & 0xFF;
                        dst[to + j] = ((b & 0x0F) - 8) * scale;
                        dst[to + half + j] = ((b >>> 4) - 8) * scale;
                    }
                }
            }
        }

        public void copy(int from, int to, int count) {
            System.arraycopy(q, from * kvDim / 2, q, to * kvDim / 2, count * kvDim / 2);
            System.arraycopy(d, from * groups, d, to * groups, count * groups);
        }

        public long bytes() {
            return (long) positions * kvDim / 2 + 2L * positions * groups;
        }
    }

    /**
     * 3- or 2-bit codes: per group, s = the RMS of its values (float16) and each value the index of the nearest
     * Lloyd-Max level for a unit Gaussian, x ~ level * s. Codes are packed little-endian, 8 values in 3 bytes (3-bit)
     * or 4 in a byte (2-bit).
     */
    public static final class Codebook extends KvRows {
        /** Lloyd-Max quantizers of N(0, 1), 8 and 4 levels. */
        static final float[] GAUSS3 = {-2.1520f, -1.3440f, -0.7560f, -0.2451f, 0.2451f, 0.7560f, 1.3440f, 2.1520f};
        static final float[] GAUSS2 = {-1.5104f, -0.4528f, 0.4528f, 1.5104f};

        private final KvFormat format;
        private final float[] levels;
        private final float[] bounds;
        private final int bits;
        private final int rowBytes;
        final byte[] q;
        final short[] d;
        private final int groups;

        Codebook(KvFormat format, float[] levels, int positions, int kvDim, int headDim) {
            super(positions, kvDim, headDim);
            this.format = format;
            this.levels = levels;
            this.bits = format.bits;
            this.bounds = new float[levels.length - 1];
            for (int i = 0; i < bounds.length; i++) bounds[i] = (levels[i] + levels[i + 1]) / 2;
            groups = kvDim / group;
            rowBytes = kvDim * bits / 8;
            q = new byte[positions * rowBytes + PAD];
            d = new short[positions * groups];
        }

        public KvFormat format() {
            return format;
        }

        public void write(int slot, float[] src, int off) {
            long base = (long) slot * rowBytes * 8;
            java.util.Arrays.fill(q, slot * rowBytes, (slot + 1) * rowBytes, (byte) 0);
            for (int g = 0; g < groups; g++) {
                int x = off + g * group;
                double ss = 0;
                for (int j = 0; j < group; j++) ss += (double) src[x + j] * src[x + j];
                float scale = Float.float16ToFloat(Float.floatToFloat16((float) Math.sqrt(ss / group)));
                d[slot * groups + g] = Float.floatToFloat16(scale);
                float inv = scale > 0 ? 1f / scale : 0f;
                for (int j = 0; j < group; j++) {
                    float v = src[x + j] * inv;
                    int code = 0;
                    while (code < bounds.length && v > bounds[code]) code++;
                    long bit = base + (long) (g * group + j) * bits;
                    for (int b = 0; b < bits; b++) {
                        if ((code >> b & 1) != 0) q[(int) ((bit + b) >> 3)] |= (byte) (1 << ((bit + b) & 7));
                    }
                }
            }
        }

        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            decode(slot, from, n, dst, dstOff, false);
        }

        /** As {@link #decode}, adding the decoded values to {@code dst} when {@code add}. */
        void decode(int slot, int from, int n, float[] dst, int dstOff, boolean add) {
            long base = (long) slot * rowBytes * 8;
            for (int g = from / group, end = (from + n) / group; g < end; g++) {
                float scale = Float.float16ToFloat(d[slot * groups + g]);
                int to = dstOff + g * group - from;
                long bit = base + (long) g * group * bits;
                for (int j = 0; j < group; j++, bit += bits) {
                    int at = (int) (bit >> 3), shift = (int) (bit & 7);
                    int word = (q[at] & 0xFF) | (q[at + 1] & 0xFF) << 8;
                    float v = levels[(word >>> shift) & ((1 << bits) - 1)] * scale;
                    dst[to + j] = add ? dst[to + j] + v : v;
                }
            }
        }

        public void copy(int from, int to, int count) {
            System.arraycopy(q, from * rowBytes, q, to * rowBytes, count * rowBytes);
            System.arraycopy(d, from * groups, d, to * groups, count * groups);
        }

        public long bytes() {
            return (long) positions * rowBytes + 2L * positions * groups;
        }
    }

    /**
     * TurboQuant's inner-product stage (its "prod" quantizer): the row's codes at one bit fewer ({@link Codebook}), and
     * per head a 1-bit sketch of what they miss (QJL). The residual r = x - x̂ of a head of d values is projected by
     * S = H D (the Walsh–Hadamard matrix, entries ±1, times fixed random signs other than the rotation's) and only the
     * signs of S r are kept, with |r| as float16. Decoding adds sqrt(π/2) |r| / d · D H sign(S r) = sqrt(π/2) |r| / d ·
     * S^T sign(S r): for Gaussian S its dot product with any query is an unbiased estimate of the residual's (QJL's
     * estimator, folded into the decoded row so attention's float kernels need nothing new); this structured S is
     * close to that where the residual is spread over the head, as a rotated row's is. A head of d values costs d sign
     * bits and 16 bits of norm on top of the codes. Ranges given to {@link #decode} are whole heads.
     */
    public static final class Sketched extends KvRows {
        private static final float SQRT_HALF_PI = (float) Math.sqrt(Math.PI / 2);

        private final KvFormat format;
        private final Codebook codes;
        private final int headDim;
        private final int heads;
        /** Per row, kvDim sign bits (bit i set: (S r)_i < 0), little-endian within each byte. */
        final byte[] signs;
        /** Per row and head, |r| as float16. */
        final short[] norms;
        /** The sketch's own random signs D (a Hadamard rotation's, from another seed) and its transform H. */
        private final float[] d;
        /** A head's residual while a row is written; rows are written on one thread at a time. */
        private final float[] residual;

        Sketched(KvFormat format, Codebook codes, int headDim) {
            super(codes.positions, codes.kvDim, headDim);
            if (Integer.bitCount(headDim) != 1 || headDim < 8) {
                throw new IllegalArgumentException("the QJL sketch needs a power-of-two head size of 8 or more, not " + headDim);
            }
            this.format = format;
            this.codes = codes;
            this.headDim = headDim;
            this.heads = kvDim / headDim;
            this.signs = new byte[positions * kvDim / 8];
            this.norms = new short[positions * heads];
            this.d = new HadamardRotation(headDim, 0xD1B54A32D192ED03L).signs; // not the rotation's seed: S must not be its inverse
            this.residual = new float[headDim];
        }

        public KvFormat format() {
            return format;
        }

        public void write(int slot, float[] src, int off) {
            codes.write(slot, src, off);
            int rowBits = slot * kvDim;
            for (int h = 0; h < heads; h++) {
                codes.decode(slot, h * headDim, headDim, residual, 0, false);
                double ss = 0;
                for (int i = 0; i < headDim; i++) {
                    float r = src[off + h * headDim + i] - residual[i];
                    ss += (double) r * r;
                    residual[i] = r * d[i];
                }
                HadamardRotation.transform(residual, 0, headDim);
                norms[slot * heads + h] = Float.floatToFloat16((float) Math.sqrt(ss));
                for (int i = 0; i < headDim; i++) {
                    int bit = rowBits + h * headDim + i;
                    if (residual[i] < 0) signs[bit >> 3] |= (byte) (1 << (bit & 7));
                    else signs[bit >> 3] &= (byte) ~(1 << (bit & 7));
                }
            }
        }

        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            if (from % headDim != 0 || n % headDim != 0) {
                throw new IllegalArgumentException("a sketched row is decoded in whole heads of " + headDim + ", not [" + from + ", " + (from + n) + ")");
            }
            for (int h = from / headDim, end = (from + n) / headDim; h < end; h++) {
                int to = dstOff + h * headDim - from;
                float g = SQRT_HALF_PI * Float.float16ToFloat(norms[slot * heads + h]) / headDim;
                int bit = slot * kvDim + h * headDim;
                for (int i = 0; i < headDim; i++, bit++) dst[to + i] = (signs[bit >> 3] >> (bit & 7) & 1) != 0 ? -g : g;
                HadamardRotation.transform(dst, to, headDim);
                for (int i = 0; i < headDim; i++) dst[to + i] *= d[i];
                codes.decode(slot, h * headDim, headDim, dst, to, true);
            }
        }

        /**
         * Decodes the codes alone of whole heads (no residual estimate): attention then adds the sketch's part to each
         * score itself ({@link #residualDot}), which costs a few masked adds per key instead of a transform per key.
         */
        public void decodeCodes(int slot, int from, int n, float[] dst, int dstOff) {
            codes.decode(slot, from, n, dst, dstOff, false);
        }

        /** A query head's projection S q = H (D q) into {@code sq[off..off+headDim)}; returns the sum of its entries. */
        public float project(float[] q, int qOff, float[] sq, int off) {
            for (int i = 0; i < headDim; i++) sq[off + i] = q[qOff + i] * d[i];
            HadamardRotation.transform(sq, off, headDim);
            float sum = 0;
            for (int i = 0; i < headDim; i++) sum += sq[off + i];
            return sum;
        }

        /**
         * The sketch's part of the dot product of a query with head {@code h} of row {@code slot}: sqrt(π/2) |r| / d ·
         * (S q · signs), from the query's projection ({@link #project}: {@code sq}, and {@code sqSum} the sum of it):
         * the sum over minus signs taken once, S q · signs = sqSum - 2 · that sum.
         */
        public float residualDot(int slot, int h, float[] sq, int off, float sqSum) {
            int bit = slot * kvDim + h * headDim;
            float minus = 0;
            int L = F.length();
            if (headDim % 8 == 0 && headDim % L == 0 && L <= 16) {
                FloatVector acc = FloatVector.zero(F);
                for (int i = 0; i < headDim; i += 8) {
                    long bits = signs[(bit + i) >> 3] & 0xFFL;
                    if (L <= 8) {
                        for (int j = 0; j < 8; j += L) {
                            acc = acc.add(FloatVector.fromArray(F, sq, off + i + j), VectorMask.fromLong(F, bits >>> j));
                        }
                    } else if ((i & 15) == 0) {
                        bits |= (signs[(bit + i + 8) >> 3] & 0xFFL) << 8;
                        acc = acc.add(FloatVector.fromArray(F, sq, off + i), VectorMask.fromLong(F, bits));
                    }
                }
                minus = acc.reduceLanes(VectorOperators.ADD);
            } else {
                for (int i = 0; i < headDim; i++, bit++) if ((signs[bit >> 3] >> (bit & 7) & 1) != 0) minus += sq[off + i];
            }
            return SQRT_HALF_PI * Float.float16ToFloat(norms[slot * heads + h]) / headDim * (sqSum - 2 * minus);
        }

        public void copy(int from, int to, int count) {
            codes.copy(from, to, count);
            System.arraycopy(signs, from * kvDim / 8, signs, to * kvDim / 8, count * kvDim / 8);
            System.arraycopy(norms, from * heads, norms, to * heads, count * heads);
        }

        public long bytes() {
            return codes.bytes() + signs.length + 2L * norms.length;
        }
    }

    /** Per-head formats: head h's values of a row live in {@code heads[h]}; decode serves any range of a row. */
    public static final class PerHead extends KvRows {
        final KvRows[] heads;
        private final int headDim;

        PerHead(KvRows[] heads, int positions, int kvDim, int headDim) {
            super(positions, kvDim, headDim);
            this.heads = heads;
            this.headDim = headDim;
        }

        /** Head 0's format (each head has its own: {@link KvType#keyFormat}). */
        @Override
        public KvFormat format() {
            return heads[0].format();
        }

        @Override
        public void write(int slot, float[] src, int off) {
            for (int h = 0; h < heads.length; h++) heads[h].write(slot, src, off + h * headDim);
        }

        @Override
        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            while (n > 0) {
                int h = from / headDim, at = from % headDim, m = Math.min(n, headDim - at);
                heads[h].decode(slot, at, m, dst, dstOff);
                from += m;
                dstOff += m;
                n -= m;
            }
        }

        @Override
        public void copy(int from, int to, int count) {
            for (KvRows h : heads) h.copy(from, to, count);
        }

        @Override
        public long bytes() {
            long b = 0;
            for (KvRows h : heads) b += h.bytes();
            return b;
        }
    }

    /**
     * Transform-coded rows ({@link KvTransformCode}): per row, the heads' codes one after another. {@link #decode}
     * gives a head's coefficients, not its values: attention turns them back ({@link KvTransformCode#inverse}), for
     * values once per output. Ranges given to {@link #decode} are whole heads.
     */
    public static final class Coded extends KvRows {
        final KvTransformCode[] codes;
        private final int headDim;
        /** Where each head's codes start within a row, in bits. */
        private final int[] headBit;
        private final int rowBytes;
        final byte[] q;

        Coded(KvTransformCode[] codes, int positions, int kvDim, int headDim) {
            super(positions, kvDim, headDim);
            this.codes = codes.clone();
            this.headDim = headDim;
            this.headBit = new int[codes.length];
            int at = 0;
            for (int h = 0; h < codes.length; h++) {
                if (codes[h].dim() != headDim) throw new IllegalArgumentException("a code for heads of " + codes[h].dim() + ", not " + headDim);
                headBit[h] = at;
                at += codes[h].rowBits();
            }
            this.rowBytes = (at + 7) / 8;
            if ((long) positions * rowBytes > Integer.MAX_VALUE - 64) throw new IllegalArgumentException("KV storage of " + positions + " positions is too large for one array");
            this.q = new byte[positions * rowBytes + PAD];
        }

        /** Bytes of one row of {@code codes}' heads. */
        public static int rowBytes(KvTransformCode[] codes) {
            int bits = 0;
            for (KvTransformCode c : codes) bits += c.rowBits();
            return (bits + 7) / 8;
        }

        public KvFormat format() {
            return KvFormat.TC;
        }

        public KvTransformCode code(int head) {
            return codes[head];
        }

        public void write(int slot, float[] src, int off) {
            java.util.Arrays.fill(q, slot * rowBytes, (slot + 1) * rowBytes, (byte) 0);
            for (int h = 0; h < codes.length; h++) codes[h].encode(src, off + h * headDim, q, slot * rowBytes * 8 + headBit[h]);
        }

        public void decode(int slot, int from, int n, float[] dst, int dstOff) {
            if (from % headDim != 0 || n % headDim != 0) {
                throw new IllegalArgumentException("a coded row is decoded in whole heads of " + headDim + ", not [" + from + ", " + (from + n) + ")");
            }
            for (int h = from / headDim, end = (from + n) / headDim; h < end; h++) {
                codes[h].decode(q, slot * rowBytes * 8 + headBit[h], dst, dstOff + h * headDim - from);
            }
        }

        public void copy(int from, int to, int count) {
            System.arraycopy(q, from * rowBytes, q, to * rowBytes, count * rowBytes);
        }

        public long bytes() {
            return (long) positions * rowBytes;
        }
    }
}
