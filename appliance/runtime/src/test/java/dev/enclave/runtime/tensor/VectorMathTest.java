package dev.enclave.runtime.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The vectorized exponentials agree with Math.exp on random inputs, odd lengths and the extremes — after a warm-up,
 * so that the compiled (SVML) routines are what is checked, not the interpreter's lane-by-lane fallback.
 */
class VectorMathTest {

    @org.junit.jupiter.api.BeforeAll
    static void compile() {
        float[] a = new float[1024];
        float[] b = new float[1024];
        java.util.Arrays.fill(b, 1f);
        for (int k = 0; k < 30_000; k++) {
            a[k & 1023] = k % 17 - 8;
            VectorMath.siluMul(a, 0, b, 0, 1024);
            VectorMath.expShifted(b, 0, a, 0, 1024, VectorMath.max(b, 0, 1024), 0.5f);
        }
    }

    @Test
    void siluMulMatchesScalar() {
        Random r = new Random(7);
        for (int n : new int[] {1, 7, 16, 33, 8192, 8195}) {
            float[] g = new float[n + 3];
            float[] u = new float[n + 5];
            for (int i = 0; i < g.length; i++) g[i] = (float) (r.nextGaussian() * 6);
            for (int i = 0; i < u.length; i++) u[i] = (float) r.nextGaussian();
            g[3] = -100f; // exp(100) overflows to infinity: silu is -0
            if (n > 1) g[4] = 100f;
            float[] want = g.clone();
            for (int i = 0; i < n; i++) want[3 + i] = (float) (g[3 + i] / (1 + Math.exp(-g[3 + i])) * u[5 + i]);
            VectorMath.siluMul(g, 3, u, 5, n);
            for (int i = 0; i < g.length; i++) {
                assertEquals(want[i], g[i], 1e-5f * Math.max(1f, Math.abs(want[i])), "n " + n + " at " + i);
            }
        }
    }

    @Test
    void softmaxPiecesMatchScalar() {
        Random r = new Random(11);
        for (int n : new int[] {1, 15, 16, 100, 128256}) {
            float[] x = new float[n + 2];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 10);
            x[n / 2 + 1] = 55f;
            float max = VectorMath.max(x, 1, n);
            float wantMax = Float.NEGATIVE_INFINITY;
            for (int i = 1; i <= n; i++) wantMax = Math.max(wantMax, x[i]);
            assertEquals(wantMax, max);
            float[] out = new float[n + 4];
            double sum = VectorMath.expShifted(x, 1, out, 4, n, max, 0.5f);
            double wantSum = 0;
            for (int i = 0; i < n; i++) {
                double e = Math.exp((x[1 + i] - max) * 0.5);
                wantSum += e;
                assertEquals(e, out[4 + i], 2e-6 * Math.max(e, 1e-30) + 1e-38, "n " + n + " at " + i);
            }
            assertEquals(wantSum, sum, 1e-5 * wantSum);
            assertTrue(sum >= 1.0, "the maximum contributes exp(0) = 1");
        }
    }
}
