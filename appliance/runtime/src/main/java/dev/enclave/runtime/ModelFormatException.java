package dev.enclave.runtime;

/**
 * A model file that cannot be used: truncated, inconsistent, hostile, or missing something the architecture
 * needs. The message says what is wrong and where (file, tensor, metadata key).
 */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
