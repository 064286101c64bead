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
    static final boolean WIDE = FloatVector.SPECIES_PREFERRED.length() >= 16;

    /**
     * The CPU's own float vector (16 lanes on AVX-512, 8 on AVX2, 4 on NEON) and the narrower integer vectors that
     * widen into it, for kernels written for any width. {@link #NATIVE} says whether they exist here as real vectors.
     */
    static final VectorSpecies<Float> FP = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> IP = IntVector.SPECIES_PREFERRED;
    /** Halves for {@link #FP}: one short per float lane. */
    static final VectorSpecies<Short> SP = FP.length() == 16 ? ShortVector.SPECIES_256
            : FP.length() == 8 ? ShortVector.SPECIES_128 : ShortVector.SPECIES_64;
    /** Bytes for {@link #FP}: one byte per float lane, or 8 (the narrowest byte vector) split into parts. */
    static final VectorSpecies<Byte> BP = FP.length() == 16 ? ByteVector.SPECIES_128 : ByteVector.SPECIES_64;
    /** Float vectors per {@link #BP} vector (2 on NEON, whose 8 bytes widen to two vectors of 4 floats). */
    static final int BP_PARTS = BP.length() / FP.length();
    static final boolean NATIVE = FP.length() >= 4 && IP.length() == FP.length();

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
