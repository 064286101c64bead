package dev.enclave.runtime.serve;

/** The scheduler's waiting queue is full; the caller should retry later (HTTP 429). */
public class QueueFullException extends RuntimeException {
    public QueueFullException(int queued) {
        super(queued + " requests are already waiting");
    }
}
