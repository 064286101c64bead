package dev.enclave.runtime.backend;

/** Work over a slice [from, to) of an index space, for {@link KernelBackend#parallel}. */
@FunctionalInterface
public interface RangeJob {
    void run(int from, int to);
}
