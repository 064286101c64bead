package dev.enclave.runtime.gguf;

import dev.enclave.runtime.ModelFormatException;

/** A GGUF file that cannot be read: truncated, inconsistent or hostile. The message says what and where. */
public class GGUFFormatException extends ModelFormatException {
    public GGUFFormatException(String message) {
        super(message);
    }

    public GGUFFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
