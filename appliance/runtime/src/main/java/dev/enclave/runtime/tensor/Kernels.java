package dev.enclave.runtime.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector shapes the fused kernels use. The wide kernels need 16 float lanes (AVX-512); on narrower CPUs (AVX2,
 * NEON) the tensors fall back to the block-decode route of {@link BlockTensor}, which is correct on any shape.
 */
final class Kernels {

    static final VectorSpecies<Float> F16L = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> B16L = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S16L = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I16L = IntVector.SPECIES_512;
    /** Whether the CPU runs 512-bit float vectors natively (otherwise the wide kernels would be emulated, slowly). */
    static final boolean WIDE = FloatVector.SPECIES_PREFERRED.length() >= 16 && !Boolean.getBoolean("enclave.narrow");

    private Kernels() {
    }

    /** Sums the lanes of four accumulators into {@code out[o]}, {@code out[o + stride]}, ... */
    static void store4(float[] out, int o, int stride, FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3) {
        out[o] = a0.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        out[o + stride] = a1.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        out[o + 2 * stride] = a2.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        out[o + 3 * stride] = a3.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
}
