package dev.enclave.runtime.tokenizer;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * What every GGUF vocabulary has, whatever its algorithm: token texts and kinds, the bytes each token stands for,
 * and the special ids. Subclasses {@link #render} a token's bytes and implement encoding.
 */
abstract class VocabularyTokenizer implements Tokenizer {

    /** A token's bytes are published whole to other threads (acquire/release on the array's elements). */
    private static final VarHandle PIECE = MethodHandles.arrayElementVarHandle(byte[][].class);

    protected final String[] tokens;
    protected final int[] types;
    /**
     * Bytes of each token as rendered without special tokens (control and unknown tokens render as nothing), made when
     * first asked for: rendering a 128K vocabulary up front was a step of every load that the first token waited for.
     */
    private final byte[][] pieces;
    protected final int bos, eos, eot, eom;

    VocabularyTokenizer(String[] tokens, int[] types, int bos, int eos, int eot, int eom) {
        this.tokens = tokens;
        this.types = types;
        this.pieces = new byte[tokens.length][];
        this.bos = bos;
        this.eos = eos;
        this.eot = eot;
        this.eom = eom;
    }

    @Override
    public byte[] pieceBytes(int token, boolean special) {
        if (token < 0 || token >= tokens.length) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary");
        }
        if (special && (types[token] == TokenType.CONTROL || types[token] == TokenType.UNKNOWN)) {
            return tokens[token].getBytes(StandardCharsets.UTF_8);
        }
        byte[] p = (byte[]) PIECE.getAcquire(pieces, token);
        if (p == null) {
            p = render(token); // two threads may both render it: the same bytes either way
            PIECE.setRelease(pieces, token, p);
        }
        return p;
    }

    /** The bytes {@code token} stands for without special tokens; called at most once per token and thread. */
    protected abstract byte[] render(int token);

    @Override
    public int vocabularySize() {
        return tokens.length;
    }

    @Override
    public int bos() {
        return bos;
    }

    @Override
    public int eos() {
        return eos;
    }

    @Override
    public boolean isEndOfGeneration(int token) {
        return token >= 0 && (token == eos || token == eot || token == eom);
    }

    @Override
    public String tokenText(int token) {
        return tokens[token];
    }
}
