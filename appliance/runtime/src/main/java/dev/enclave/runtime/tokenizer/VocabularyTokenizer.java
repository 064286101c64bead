package dev.enclave.runtime.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * What every GGUF vocabulary has, whatever its algorithm: token texts and kinds, the bytes each token stands for,
 * and the special ids. Subclasses fill {@link #pieces} and implement encoding.
 */
abstract class VocabularyTokenizer implements Tokenizer {

    protected final String[] tokens;
    protected final int[] types;
    /** Bytes of each token as rendered without special tokens (control and unknown tokens render as nothing). */
    protected final byte[][] pieces;
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
        return pieces[token];
    }

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
