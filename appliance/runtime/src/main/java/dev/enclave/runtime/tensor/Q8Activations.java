package dev.enclave.runtime.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Input vectors quantized for the integer kernels, as ggml quantizes activations (its Q8_0 for the vector side of
 * a product): per block of 32 values a scale {@code d = max|x| / 127} rounded to half precision, the values
 * {@code round(x / d)} in [-127, 127] (held as shorts, the width the kernels multiply in), and their sum. One
 * buffer per caller, grown on first use and then reused: quantizing allocates nothing.
 */
public final class Q8Activations {

    private static final jdk.incubator.vector.VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.length() <= 8
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_256;

    short[] q = new short[0];
    float[] d = new float[0];
    int[] sums = new int[0];
    int cols;
    int tokens;

    /** Quantizes {@code tokens} vectors of {@code cols} values; vector t starts at {@code x[xOff + t * xStride]}. */
    public void quantize(float[] x, int xOff, int xStride, int cols, int tokens) {
        prepare(cols, tokens);
        quantizeTokens(x, xOff, xStride, 0, tokens);
    }

    /** Sizes the buffers for {@code tokens} vectors of {@code cols} values, to be filled by {@link #quantizeTokens}. */
    public void prepare(int cols, int tokens) {
        if (cols % 32 != 0) throw new IllegalArgumentException("activations are quantized in blocks of 32, got " + cols);
        int n = cols * tokens;
        if (q.length < n) {
            q = new short[n];
            d = new float[n / 32];
            sums = new int[n / 32];
        }
        this.cols = cols;
        this.tokens = tokens;
    }

    /**
     * Quantizes vectors {@code from .. to} of a prepared batch; disjoint ranges may run on different threads (a
     * 512-token prompt chunk is spread over the pool instead of waiting on one thread).
     */
    public void quantizeTokens(float[] x, int xOff, int xStride, int from, int to) {
        for (int t = from; t < to; t++) {
            int src = xOff + t * xStride;
            int dst = t * cols;
            for (int b = 0; b < cols; b += 32) quantizeBlock(x, src + b, dst + b);
        }
    }

    private void quantizeBlock(float[] x, int src, int dst) {
        if (Kernels.WIDE) {
            FloatVector v0 = FloatVector.fromArray(Kernels.F16L, x, src);
            FloatVector v1 = FloatVector.fromArray(Kernels.F16L, x, src + 16);
            float amax = v0.abs().max(v1.abs()).reduceLanes(VectorOperators.MAX);
            float scale = amax / 127f;
            float inv = scale != 0f ? 1f / scale : 0f;
            IntVector q0 = round(v0, inv);
            IntVector q1 = round(v1, inv);
            ((ShortVector) q0.convertShape(VectorOperators.I2S, Kernels.S16L, 0)).intoArray(q, dst);
            ((ShortVector) q1.convertShape(VectorOperators.I2S, Kernels.S16L, 0)).intoArray(q, dst + 16);
            d[dst / 32] = Float.float16ToFloat(Float.floatToFloat16(scale));
            sums[dst / 32] = q0.add(q1).reduceLanes(VectorOperators.ADD);
            return;
        }
        // any vector width (AVX2, NEON): the block's largest magnitude a vector at a time, the rest scalar
        FloatVector m = FloatVector.zero(F);
        for (int j = 0; j < 32; j += F.length()) m = m.max(FloatVector.fromArray(F, x, src + j).abs());
        float amax = m.reduceLanes(VectorOperators.MAX);
        float scale = amax / 127f;
        float inv = scale != 0f ? 1f / scale : 0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            // roundf: half away from zero, as ggml's reference quantizer
            int v = Math.round(Math.abs(x[src + j] * inv));
            v = x[src + j] < 0 ? -v : v;
            q[dst + j] = (short) v;
            sum += v;
        }
        d[dst / 32] = Float.float16ToFloat(Float.floatToFloat16(scale));
        sums[dst / 32] = sum;
    }

    /** round(v * inv), halves away from zero (roundf), 16 lanes. */
    private static IntVector round(FloatVector v, float inv) {
        FloatVector m = v.abs().mul(inv).add(0.5f);
        IntVector r = (IntVector) m.convertShape(VectorOperators.F2I, Kernels.I16L, 0); // truncates: floor for m >= 0
        return r.lanewise(VectorOperators.NEG, v.compare(VectorOperators.LT, 0f).cast(Kernels.I16L));
    }

    public int cols() {
        return cols;
    }

    public int tokens() {
        return tokens;
    }

    /** The dequantized value {@code j} of token {@code t} (for tests). */
    public float value(int t, int j) {
        int i = t * cols + j;
        return q[i] * d[i / 32];
    }
}
