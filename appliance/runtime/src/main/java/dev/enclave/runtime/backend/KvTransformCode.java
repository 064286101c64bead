package dev.enclave.runtime.backend;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Transform coding of one KV head (its keys or its values): a calibrated linear transform T turns a head's d values
 * into d coefficients of decreasing importance, coefficient i is stored as a {@code bits[i]}-bit index into its own
 * codebook of levels (1-D Lloyd-Max on calibration data), and a coefficient given no bits is dropped. Decoding gives
 * the coefficients; {@link #inverse} turns them (or any sum of them, as attention's weighted sum of values) back.
 *
 * <p>The transform whitens by what the error costs and then decorrelates (a Karhunen-Loève transform): for keys, the
 * square root of the queries' second moment, so that the coefficients' squared error is the scores' error; for values,
 * the square root of W_o's Gram matrix for the head, so that it is the attention output's error after W_o. With equal
 * weight per squared error, giving each coefficient bits by reverse water-filling over its variance is the classic
 * optimal allocation. No scale is stored per row: codebooks are static, so every stored bit is a code bit.
 *
 * <p>Codes are packed little-endian, coefficient after coefficient, from any bit (a row's heads follow each other).
 */
public final class KvTransformCode {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    final int dim;
    /** T, row-major: coefficient i = row i · x. */
    final float[] forward;
    /** T⁻¹ column-major: x = Σ_i c_i · column i (column i at i * dim). */
    final float[] inverse;
    final byte[] bits;
    final float[][] levels;
    private final float[][] bounds;
    /** The coefficients that get bits, in order, and where each one's code starts in the head's bits. */
    private final int[] kept;
    private final int[] bitOffset;
    /** The kept coefficients' levels one after another (one array read per code), where each starts, and its mask. */
    private final float[] flatLevels;
    private final int[] levelBase;
    private final int[] mask;
    final int rowBits;

    /**
     * @param forward T row-major (d × d)
     * @param inverse T⁻¹ row-major (d × d)
     * @param bits    bits per coefficient, 0 to 8
     * @param levels  per coefficient 2^bits[i] increasing levels (ignored where bits[i] is 0)
     */
    public KvTransformCode(int dim, float[] forward, float[] inverse, byte[] bits, float[][] levels) {
        if (forward.length != dim * dim || inverse.length != dim * dim || bits.length != dim || levels.length != dim) {
            throw new IllegalArgumentException("a transform code of " + dim + " values needs d x d transforms and d codebooks");
        }
        this.dim = dim;
        this.forward = forward.clone();
        this.inverse = new float[dim * dim];
        for (int r = 0; r < dim; r++) for (int c = 0; c < dim; c++) this.inverse[c * dim + r] = inverse[r * dim + c];
        this.bits = bits.clone();
        this.levels = new float[dim][];
        this.bounds = new float[dim][];
        int n = 0, total = 0;
        for (int i = 0; i < dim; i++) {
            int b = bits[i];
            if (b < 0 || b > 8) throw new IllegalArgumentException("coefficient " + i + " has " + b + " bits (0 to 8)");
            if (b == 0) continue;
            float[] l = levels[i];
            if (l == null || l.length != 1 << b) throw new IllegalArgumentException("coefficient " + i + " needs " + (1 << b) + " levels");
            for (int j = 0; j < l.length; j++) {
                if (!Float.isFinite(l[j]) || j > 0 && l[j] < l[j - 1]) throw new IllegalArgumentException("coefficient " + i + "'s levels are not increasing");
            }
            this.levels[i] = l.clone();
            float[] bd = new float[l.length - 1];
            for (int j = 0; j < bd.length; j++) bd[j] = (l[j] + l[j + 1]) / 2;
            this.bounds[i] = bd;
            n++;
            total += b;
        }
        for (float f : forward) if (!Float.isFinite(f)) throw new IllegalArgumentException("the transform is not finite");
        for (float f : inverse) if (!Float.isFinite(f)) throw new IllegalArgumentException("the inverse transform is not finite");
        this.kept = new int[n];
        this.bitOffset = new int[n];
        for (int i = 0, k = 0, at = 0; i < dim; i++) {
            if (bits[i] == 0) continue;
            kept[k] = i;
            bitOffset[k++] = at;
            at += bits[i];
        }
        this.rowBits = total;
        this.levelBase = new int[n];
        this.mask = new int[n];
        int size = 0;
        for (int k = 0; k < n; k++) {
            levelBase[k] = size;
            mask[k] = (1 << bits[kept[k]]) - 1;
            size += 1 << bits[kept[k]];
        }
        this.flatLevels = new float[size];
        for (int k = 0; k < n; k++) System.arraycopy(this.levels[kept[k]], 0, flatLevels, levelBase[k], this.levels[kept[k]].length);
    }

    public int dim() {
        return dim;
    }

    /** Code bits per head row. */
    public int rowBits() {
        return rowBits;
    }


    /** Bits per coefficient (a copy). */
    public byte[] bits() {
        return bits.clone();
    }

    /** The row-major transform T (a copy). */
    public float[] forward() {
        return forward.clone();
    }

    /** The row-major inverse T⁻¹ (a copy). */
    public float[] inverseRowMajor() {
        float[] out = new float[dim * dim];
        for (int r = 0; r < dim; r++) for (int c = 0; c < dim; c++) out[r * dim + c] = inverse[c * dim + r];
        return out;
    }

    /** Coefficient i's levels (a copy; null where it has no bits). */
    public float[] levels(int i) {
        return levels[i] == null ? null : levels[i].clone();
    }

    /** Encodes the head at {@code x[off..off+dim)} into {@code dst} from bit {@code at}, OR-ing into bits the caller cleared. */
    public void encode(float[] x, int off, byte[] dst, int at) {
        for (int k = 0; k < kept.length; k++) {
            int i = kept[k];
            float c = 0;
            for (int j = 0, r = i * dim; j < dim; j++) c += forward[r + j] * x[off + j];
            float[] bd = bounds[i];
            // nearest level: binary search over the midpoints
            int lo = 0, hi = bd.length;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (c > bd[mid]) lo = mid + 1;
                else hi = mid;
            }
            int bit = at + bitOffset[k];
            int word = lo << (bit & 7);
            dst[bit >> 3] |= (byte) word;
            if ((bit & 7) + bits[i] > 8) dst[(bit >> 3) + 1] |= (byte) (word >>> 8);
        }
    }

    /** The coefficients of the head coded from bit {@code at} of {@code src} into {@code dst[off..off+dim)} (dropped ones 0). */
    public void decode(byte[] src, int at, float[] dst, int off) {
        if (kept.length < dim) java.util.Arrays.fill(dst, off, off + dim, 0f);
        for (int k = 0; k < kept.length; k++) {
            int bit = at + bitOffset[k];
            int b = bit >> 3;
            int word = (src[b] & 0xFF) | (b + 1 < src.length ? (src[b + 1] & 0xFF) << 8 : 0);
            dst[off + kept[k]] = flatLevels[levelBase[k] + ((word >>> (bit & 7)) & mask[k])];
        }
    }

    /**
     * x = T⁻¹ c: coefficients {@code c[cOff..]} back to values in {@code x[xOff..xOff+dim)} (x must not overlap c). Only
     * the coefficients with bits count (the others are 0 in every row, and so in any sum of rows); four vectors of x
     * are summed in registers at a time, each column read once.
     */
    public void inverse(float[] c, int cOff, float[] x, int xOff) {
        int L = F.length();
        int j = 0;
        if (dim % L == 0) {
            for (; j + 4 * L <= dim; j += 4 * L) {
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                for (int i : kept) {
                    FloatVector s = FloatVector.broadcast(F, c[cOff + i]);
                    int col = i * dim + j;
                    a0 = FloatVector.fromArray(F, inverse, col).fma(s, a0);
                    a1 = FloatVector.fromArray(F, inverse, col + L).fma(s, a1);
                    a2 = FloatVector.fromArray(F, inverse, col + 2 * L).fma(s, a2);
                    a3 = FloatVector.fromArray(F, inverse, col + 3 * L).fma(s, a3);
                }
                a0.intoArray(x, xOff + j);
                a1.intoArray(x, xOff + j + L);
                a2.intoArray(x, xOff + j + 2 * L);
                a3.intoArray(x, xOff + j + 3 * L);
            }
            for (; j < dim; j += L) {
                FloatVector a = FloatVector.zero(F);
                for (int i : kept) a = FloatVector.fromArray(F, inverse, i * dim + j).fma(FloatVector.broadcast(F, c[cOff + i]), a);
                a.intoArray(x, xOff + j);
            }
            return;
        }
        java.util.Arrays.fill(x, xOff, xOff + dim, 0f);
        for (int i : kept) {
            float ci = c[cOff + i];
            int col = i * dim;
            for (int r = 0; r < dim; r++) x[xOff + r] += ci * inverse[col + r];
        }
    }

    /** The coefficients T x of a head (no quantization): calibration and tests. */
    public void transform(float[] x, int off, float[] c, int cOff) {
        for (int i = 0; i < dim; i++) {
            float s = 0;
            for (int j = 0; j < dim; j++) s += forward[i * dim + j] * x[off + j];
            c[cOff + i] = s;
        }
    }
}
