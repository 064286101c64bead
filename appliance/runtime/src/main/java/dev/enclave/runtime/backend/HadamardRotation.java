package dev.enclave.runtime.backend;

/**
 * The orthogonal rotation a rotated KV type applies per head: {@code R = H D / sqrt(n)}, H the Walsh–Hadamard matrix
 * of size n (a power of two) and D fixed random signs. Orthogonal, so {@code dot(R q, R k) = dot(q, k)}: keys are
 * stored rotated and each query is rotated instead of un-rotating keys; values are stored rotated and a head's output
 * (a weighted sum of them) is turned back with {@code R^T = D H / sqrt(n)}. The signs come from a fixed seed, so every
 * run and backend agrees.
 */
public final class HadamardRotation {

    /** The fixed random signs D (±1). */
    final float[] signs;
    private final float norm;

    public HadamardRotation(int n) {
        this(n, 0x9E3779B97F4A7C15L);
    }

    /** With signs from another seed (the QJL sketch's projection must not be the keys' rotation). */
    HadamardRotation(int n, long seed) {
        if (Integer.bitCount(n) != 1) throw new IllegalArgumentException("a Hadamard rotation needs a power-of-two size, not " + n);
        signs = new float[n];
        long state = seed ^ n;
        for (int i = 0; i < n; i++) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            signs[i] = (state >>> 63) == 0 ? 1f : -1f;
        }
        norm = (float) (1 / Math.sqrt(n));
    }

    public int size() {
        return signs.length;
    }

    /** {@code x[off..off+n) = R x}. */
    public void rotate(float[] x, int off) {
        int n = signs.length;
        for (int i = 0; i < n; i++) x[off + i] *= signs[i];
        transform(x, off, n);
        for (int i = 0; i < n; i++) x[off + i] *= norm;
    }

    /** {@code x[off..off+n) = R^T x}. */
    public void unrotate(float[] x, int off) {
        int n = signs.length;
        transform(x, off, n);
        for (int i = 0; i < n; i++) x[off + i] *= norm * signs[i];
    }

    /** The fast Walsh–Hadamard transform in place (unnormalized). */
    static void transform(float[] x, int off, int n) {
        for (int len = 1; len < n; len <<= 1) {
            for (int i = 0; i < n; i += len << 1) {
                for (int j = i; j < i + len; j++) {
                    float a = x[off + j], b = x[off + j + len];
                    x[off + j] = a + b;
                    x[off + j + len] = a - b;
                }
            }
        }
    }
}
