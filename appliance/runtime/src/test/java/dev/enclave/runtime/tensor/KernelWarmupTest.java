package dev.enclave.runtime.tensor;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.enclave.runtime.gguf.GGMLType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The two-phase warm-up runs to its end on native and mapped memory and then releases the batch kernels to every
 * batch; a model closed under it ends it quietly, releasing them too. (That batches give the same results either
 * way is {@link RowGroupTensorTest#fourTokenKernelMatchesTheOneTokenKernelBitForBit}.)
 */
class KernelWarmupTest {

    @TempDir
    Path dir;

    @Test
    void runsToItsEndAndReleasesTheBatchKernels() throws Exception {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        try (Arena arena = Arena.ofShared()) {
            MemorySegment mapped = mappedFile(arena, 1 << 20);
            KernelWarmup w = KernelWarmup.start(EnumSet.of(GGMLType.F32, GGMLType.Q4_0, GGMLType.Q6_K), true, true, false,
                    Map.of(GGMLType.Q4_0, mapped, GGMLType.Q6_K, mapped));
            w.awaitFirstToken();
            w.join();
            assertNoneWarmingSoon("nothing left warming once it has finished");
        }
    }

    @Test
    void aModelClosedUnderTheWarmupEndsIt() throws Exception {
        assumeTrue(RowGroupTensor.AVAILABLE, "the row-group kernels need vectors of 8 shorts or more");
        Arena arena = Arena.ofShared();
        MemorySegment mapped = mappedFile(arena, 1 << 20);
        KernelWarmup w = KernelWarmup.start(EnumSet.of(GGMLType.Q4_K), true, false, false, Map.of(GGMLType.Q4_K, mapped));
        arena.close();
        w.awaitFirstToken();
        w.join();
        assertNoneWarmingSoon("the counter is released however the warm-up ends");
    }

    @Test
    void theSharedWarmupRunsOnceAndEveryCallerWaitsForIt() throws Exception {
        // as at a command's start (a thread started before the model is read) and then the model's loader
        java.util.concurrent.atomic.AtomicBoolean warmedWhenReturned = new java.util.concurrent.atomic.AtomicBoolean();
        Thread early = Thread.ofPlatform().start(() -> {
            KernelWarmup.warmShared();
            warmedWhenReturned.set(KernelWarmup.sharedWarmed());
        });
        KernelWarmup.warmShared();
        assertTrue(KernelWarmup.sharedWarmed(), "a second caller returns only once the first one's run has ended");
        early.join();
        assertTrue(warmedWhenReturned.get(), "so does the first");
    }

    /** Another test's model may still be finishing its own warm-up in the background: those end within seconds. */
    private static void assertNoneWarmingSoon(String message) throws InterruptedException {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (KernelWarmup.batchKernelsWarming() && System.nanoTime() < deadline) Thread.sleep(20);
        assertFalse(KernelWarmup.batchKernelsWarming(), message);
    }

    private MemorySegment mappedFile(Arena arena, int size) throws IOException {
        Path f = Files.createTempFile(dir, "weights", ".bin");
        byte[] bytes = new byte[size];
        new java.util.SplittableRandom(3).nextBytes(bytes);
        Files.write(f, bytes);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        }
    }
}
