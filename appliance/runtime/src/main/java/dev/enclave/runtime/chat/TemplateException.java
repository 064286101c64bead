package dev.enclave.runtime.chat;

/** A chat template that cannot be parsed or rendered; the message names the line or the failing construct. */
public class TemplateException extends RuntimeException {
    public TemplateException(String message) {
        super(message);
    }
}
