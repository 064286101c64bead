package dev.enclave.runtime.generate;

/** Why generation ended, named as OpenAI's {@code finish_reason} values. */
public enum FinishReason {
    /** End-of-generation token or a stop string. */
    STOP("stop"),
    /** {@code max_tokens} reached or the context is full. */
    LENGTH("length"),
    /** The client went away or asked to stop. */
    CANCELLED("cancelled");

    public final String openAiName;

    FinishReason(String openAiName) {
        this.openAiName = openAiName;
    }
}
