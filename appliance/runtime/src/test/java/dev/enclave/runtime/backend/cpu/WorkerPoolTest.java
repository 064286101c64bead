package dev.enclave.runtime.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/** Threads claim chunks of each job: every index runs exactly once, whatever the size, and failures reach the caller. */
class WorkerPoolTest {

    @Test
    void everyIndexRunsExactlyOnce() {
        Random r = new Random(3);
        for (int threads : new int[] {1, 2, 3, 5}) {
            try (WorkerPool pool = new WorkerPool(threads)) {
                for (int trial = 0; trial < 300; trial++) {
                    int size = trial < 20 ? trial : 1 + r.nextInt(5000);
                    AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(size, 1));
                    pool.run(size, (from, to) -> {
                        if (from < 0 || to > size || from >= to) throw new IllegalStateException("bad range " + from + ".." + to);
                        for (int i = from; i < to; i++) hits.incrementAndGet(i);
                    });
                    for (int i = 0; i < size; i++) assertEquals(1, hits.get(i), "threads " + threads + " size " + size + " index " + i);
                }
            }
        }
    }

    @Test
    void aFailingChunkFailsTheCallAndThePoolGoesOn() {
        try (WorkerPool pool = new WorkerPool(2)) {
            for (int trial = 0; trial < 50; trial++) {
                int bad = trial * 37 % 1000;
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pool.run(1000, (from, to) -> {
                    if (bad >= from && bad < to) throw new IllegalArgumentException("index " + bad);
                }));
                assertEquals("index " + bad, e.getMessage());
                // every chunk fails, on both threads at once: one failure comes back, and none is left for later
                assertThrows(IllegalStateException.class, () -> pool.run(1000, (from, to) -> {
                    throw new IllegalStateException("all");
                }));
                AtomicIntegerArray hits = new AtomicIntegerArray(1000);
                pool.run(1000, (from, to) -> {
                    for (int i = from; i < to; i++) hits.incrementAndGet(i);
                });
                for (int i = 0; i < 1000; i++) assertEquals(1, hits.get(i));
            }
        }
    }
}
