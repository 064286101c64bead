package dev.enclave.runtime.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The repack cache with the native kernels loaded: the file's Q4_K and Q6_K matrices are repacked for the library
 * (its own layout, kind {@link NativeRepackedTensor#KIND}); the second load maps every one of them (no write) with
 * bit-identical logits, and damage is ignored.
 */
class NativeRepackCacheTest extends RepackCacheTest {

    @Test
    void theCacheHoldsTheNativeLayout() throws Exception {
        NativeKernels k = CpuBackend.instance().nativeKernels();
        assertNotNull(k, "the library for this CPU loads");
        org.junit.jupiter.api.Assumptions.assumeTrue(k.repackedBytes(dev.enclave.runtime.gguf.GGMLType.Q6_K, 16, 256) > 0,
                "this CPU has no repacked native layout (AVX-512 VNNI)");
        secondLoadMapsTheCacheAndDamageIsIgnored();
        try (var files = Files.list(dir)) {
            Path cache = files.filter(p -> p.toString().endsWith(".repack")).findFirst().orElseThrow();
            String head = new String(Files.readAllBytes(cache), 0, 1 << 16, StandardCharsets.ISO_8859_1);
            assertTrue(head.contains(NativeRepackedTensor.KIND), "native tensors in the cache's header");
        }
    }

    /** The vocabulary's int8 form is the Java route's: with the native kernels Q6_K has one layout only. */
    @Override
    void vocabularyLayoutSwitchRepacksAndKeepsTheLogits() {
    }
}
