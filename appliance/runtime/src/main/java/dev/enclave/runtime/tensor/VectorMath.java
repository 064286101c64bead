package dev.enclave.runtime.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise exponentials for the loops outside the matrix products: the SwiGLU gate, attention and sampling
 * softmaxes. A scalar {@code Math.exp} costs ~7 ns; over the 8192-wide gate of 16 layers and a 128K vocabulary that
 * was ~2 ms per token, run on one thread while the others wait. The vector form (the JDK's SVML routines on x86,
 * within an ulp or two) does 8192 in ~5 µs instead of ~60.
 */
public final class VectorMath {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Where the JDK has no vector exponential (it would run lane by lane, slower than scalar), stay scalar. */
    private static final boolean VECTOR_EXP = F.length() >= 8
            && (System.getProperty("os.arch", "").equals("amd64") || System.getProperty("os.arch", "").equals("x86_64"));

    private VectorMath() {
    }

    /** {@code gate[i] = silu(gate[i]) * up[i]} for n elements (SwiGLU). */
    public static void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        int i = 0;
        if (VECTOR_EXP) {
            for (; i + F.length() <= n; i += F.length()) {
                FloatVector g = FloatVector.fromArray(F, gate, gOff + i);
                FloatVector d = g.neg().lanewise(VectorOperators.EXP).add(1f);
                g.div(d).mul(FloatVector.fromArray(F, up, uOff + i)).intoArray(gate, gOff + i);
            }
        }
        for (; i < n; i++) {
            float g = gate[gOff + i];
            gate[gOff + i] = g / (1f + (float) Math.exp(-g)) * up[uOff + i];
        }
    }

    /** The largest of {@code x[off .. off+n)}. */
    public static float max(float[] x, int off, int n) {
        int i = 0;
        float max = Float.NEGATIVE_INFINITY;
        if (n >= F.length()) {
            FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; i + F.length() <= n; i += F.length()) m = m.max(FloatVector.fromArray(F, x, off + i));
            max = m.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) max = Math.max(max, x[off + i]);
        return max;
    }

    /**
     * {@code out[outOff + i] = exp((x[off + i] - max) * scale)} for n elements; returns their sum (accumulated in
     * float lanes, then double: relative error ~1e-6 over a 128K vocabulary, far below sampling's resolution).
     */
    public static double expShifted(float[] x, int off, float[] out, int outOff, int n, float max, float scale) {
        int i = 0;
        double sum = 0;
        if (VECTOR_EXP) {
            FloatVector acc = FloatVector.zero(F);
            int chunk = 0;
            for (; i + F.length() <= n; i += F.length()) {
                FloatVector e = FloatVector.fromArray(F, x, off + i).sub(max).mul(scale).lanewise(VectorOperators.EXP);
                e.intoArray(out, outOff + i);
                acc = acc.add(e);
                if (++chunk == 256) { // keep float accumulators short
                    sum += acc.reduceLanes(VectorOperators.ADD);
                    acc = FloatVector.zero(F);
                    chunk = 0;
                }
            }
            sum += acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            float e = (float) Math.exp((x[off + i] - max) * scale);
            out[outOff + i] = e;
            sum += e;
        }
        return sum;
    }

    /** The sum of the elements of {@code x[off .. off+n)} that are at least {@code floor}. */
    public static double sumAtLeast(float[] x, int off, int n, float floor) {
        int i = 0;
        double sum = 0;
        FloatVector acc = FloatVector.zero(F);
        int chunk = 0;
        for (; i + F.length() <= n; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, x, off + i);
            acc = acc.add(v, v.compare(VectorOperators.GE, floor));
            if (++chunk == 256) {
                sum += acc.reduceLanes(VectorOperators.ADD);
                acc = FloatVector.zero(F);
                chunk = 0;
            }
        }
        sum += acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) if (x[off + i] >= floor) sum += x[off + i];
        return sum;
    }

    /** {@code x[off + i] *= s} for n elements. */
    public static void scale(float[] x, int off, int n, float s) {
        int i = 0;
        for (; i + F.length() <= n; i += F.length()) FloatVector.fromArray(F, x, off + i).mul(s).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] *= s;
    }
}
