package dev.enclave.installer;

/** A bundle or an installation step refused, with the reason a person can act on. */
public final class BundleException extends Exception {
    public BundleException(String message) {
        super(message);
    }

    public BundleException(String message, Throwable cause) {
        super(message, cause);
    }
}
