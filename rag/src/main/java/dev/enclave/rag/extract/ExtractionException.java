package dev.enclave.rag.extract;

/** A document that cannot be read, with a reason a person can act on ("encrypted", "over the size limit"). */
public final class ExtractionException extends Exception {
    public ExtractionException(String reason) {
        super(reason);
    }

    public ExtractionException(String reason, Throwable cause) {
        super(reason, cause);
    }
}
