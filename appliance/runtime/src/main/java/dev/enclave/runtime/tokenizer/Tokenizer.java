package dev.enclave.runtime.tokenizer;

import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFFormatException;

/** Text to token ids and back, built from a GGUF file's tokenizer metadata. */
public interface Tokenizer {

    /**
     * Token ids for {@code text}.
     *
     * @param addSpecial   add BOS/EOS as the vocabulary asks ({@code tokenizer.ggml.add_bos_token} ...)
     * @param parseSpecial recognise the text of control tokens (e.g. {@code <s>}) as those tokens
     */
    int[] encode(String text, boolean addSpecial, boolean parseSpecial);

    /** The bytes a token stands for. Control tokens render as nothing unless {@code special}. */
    byte[] pieceBytes(int token, boolean special);

    int vocabularySize();

    /** Beginning-of-sequence token, or -1. */
    int bos();

    /** End-of-sequence token, or -1. */
    int eos();

    /** Whether generating this token ends the answer (EOS, end-of-turn, end-of-message). */
    boolean isEndOfGeneration(int token);

    /** The token's text as stored in the vocabulary. */
    String tokenText(int token);

    /** Concatenated pieces of {@code tokens} as UTF-8 text (control tokens omitted). */
    default String decode(int[] tokens) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int t : tokens) {
            out.writeBytes(pieceBytes(t, false));
        }
        return out.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    static Tokenizer fromGGUF(GGUFFile gguf) {
        return fromGGUF(gguf, null);
    }

    /**
     * The tokenizer of {@code gguf}; a byte-level BPE vocabulary's merge table is read from and kept in {@code cache}
     * (null: built from the merges each time).
     */
    static Tokenizer fromGGUF(GGUFFile gguf, MergeTableCache cache) {
        String model = gguf.getString("tokenizer.ggml.model", null);
        if (model == null) {
            throw new GGUFFormatException("the model has no tokenizer (tokenizer.ggml.model is missing)");
        }
        return switch (model) {
            case "llama" -> SentencePieceTokenizer.fromGGUF(gguf);
            case "gpt2" -> BytePairTokenizer.fromGGUF(gguf, cache);
            default -> throw new dev.enclave.runtime.ModelFormatException("tokenizer model '" + model + "' is not supported (supported: llama, gpt2)");
        };
    }
}
