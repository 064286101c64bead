package dev.enclave.runtime.generate;

/** Receives streamed output. Return false to cancel generation (e.g. the client disconnected). */
@FunctionalInterface
public interface TokenListener {

    /** {@code text} is the newly released valid UTF-8 text (may be empty while bytes or a stop prefix are held). */
    boolean onToken(int token, String text);

    /** With log-probabilities, when the request asked for them ({@code lp} is null otherwise). */
    default boolean onToken(int token, String text, TokenLogprobs lp) {
        return onToken(token, text);
    }

    TokenListener NONE = (t, s) -> true;
}
