package dev.enclave.runtime.generate;

/** The prompt (plus what must follow it) does not fit in the model's context window. */
public class ContextLengthExceededException extends IllegalArgumentException {

    public final int requested;
    public final int contextLength;

    public ContextLengthExceededException(int requested, int contextLength) {
        super("the prompt needs " + requested + " positions but the model's context holds " + contextLength);
        this.requested = requested;
        this.contextLength = contextLength;
    }
}
