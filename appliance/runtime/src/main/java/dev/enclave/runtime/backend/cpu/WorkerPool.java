package dev.enclave.runtime.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of threads that run one data-parallel job at a time over a static partition of [0, size): one
 * contiguous slice per thread, each claimed by whichever thread comes first (a shared counter), so a worker that
 * wakes late leaves its slice to the caller instead of holding the job up. (Finer chunks, ~8 per thread, measured the
 * same on `./enclave bench` — pp128 93.0 vs 91.6 tok/s, tg64 29.1 vs 29.4, three runs each — so slices stay whole,
 * which keeps each thread's rows contiguous.) Workers spin briefly between jobs (a decode step issues hundreds of
 * jobs back to back) and then park, so an idle appliance uses no CPU. Nothing is allocated per job. Jobs from
 * different callers are serialized.
 */
public final class WorkerPool implements AutoCloseable {

    /** A job over a slice [from, to) of its index space. */
    @FunctionalInterface
    public interface Job extends dev.enclave.runtime.backend.RangeJob {
    }

    private static final int SPINS = 20_000;

    private final int threads;
    private final Worker[] workers;
    private final AtomicInteger remaining = new AtomicInteger();
    private final AtomicInteger next = new AtomicInteger();
    private int chunk;
    private volatile int epoch;
    private volatile boolean closed;
    private dev.enclave.runtime.backend.RangeJob job;
    private int size;
    private volatile Throwable failure;

    public WorkerPool(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1");
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker();
            Thread t = new PoolThread(workers[i], i + 1);
            t.setDaemon(true);
            workers[i].thread = t;
            t.start();
        }
    }

    public int threads() {
        return threads;
    }

    /** Index of the pool thread running this code: 1..threads-1 for workers, 0 for any other thread (the caller). */
    public static int currentIndex() {
        return Thread.currentThread() instanceof PoolThread p ? p.index : 0;
    }

    private static final class PoolThread extends Thread {
        final int index;

        PoolThread(Runnable r, int index) {
            super(r, "enclave-cpu-" + index);
            this.index = index;
        }
    }

    /** Runs {@code job} over [0, size) split across all threads; returns when every slice is done. */
    public synchronized void run(int size, dev.enclave.runtime.backend.RangeJob job) {
        if (size <= 0) return;
        if (threads == 1 || size < threads) {
            job.run(0, size);
            return;
        }
        this.job = job;
        this.size = size;
        this.chunk = (size + threads - 1) / threads;
        next.set(0);
        remaining.set(workers.length);
        epoch = epoch + 1; // publishes job and size
        for (Worker w : workers) {
            if (w.parked) LockSupport.unpark(w.thread);
        }
        Throwable own = null;
        try {
            drain();
        } catch (Throwable t) {
            own = t;
            next.set(size); // the call fails: nobody needs to start another chunk
        }
        int spins = 0;
        while (remaining.get() != 0) {
            if (++spins < SPINS) Thread.onSpinWait();
            else Thread.yield();
        }
        this.job = null;
        // a worker's failure is cleared here even when the caller's own is the one thrown, so no later call sees it
        Throwable f = own != null ? own : failure;
        failure = null;
        if (f != null) {
            if (f instanceof RuntimeException r) throw r;
            if (f instanceof Error e) throw e;
            throw new IllegalStateException(f);
        }
    }

    /** Runs chunks of the current job until the counter passes its end. */
    private void drain() {
        dev.enclave.runtime.backend.RangeJob j = job;
        int n = size;
        int c = chunk;
        for (int from = next.getAndAdd(c); from < n; from = next.getAndAdd(c)) {
            j.run(from, Math.min(n, from + c));
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) LockSupport.unpark(w.thread);
    }

    private final class Worker implements Runnable {
        Thread thread;
        volatile boolean parked;

        @Override
        public void run() {
            int seen = 0;
            while (!closed) {
                int spins = 0;
                while (epoch == seen && !closed) {
                    if (++spins < SPINS) {
                        Thread.onSpinWait();
                    } else {
                        parked = true;
                        if (epoch == seen && !closed) LockSupport.park(this);
                        parked = false;
                        spins = 0;
                    }
                }
                if (closed) return;
                seen = epoch;
                try {
                    drain();
                } catch (Throwable t) {
                    failure = t; // rethrown on the calling thread
                } finally {
                    remaining.decrementAndGet();
                }
            }
        }
    }
}
