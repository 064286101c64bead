package dev.enclave.runtime.tokenizer;

/** Token kinds as stored in {@code tokenizer.ggml.token_type}. */
public final class TokenType {
    public static final int NORMAL = 1;
    public static final int UNKNOWN = 2;
    public static final int CONTROL = 3;
    public static final int USER_DEFINED = 4;
    public static final int UNUSED = 5;
    public static final int BYTE = 6;

    private TokenType() {
    }
}
