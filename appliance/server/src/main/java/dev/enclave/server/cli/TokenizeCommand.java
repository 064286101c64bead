package dev.enclave.server.cli;

import dev.enclave.runtime.tokenizer.Tokenizer;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code enclave tokenize}: the token ids of a text under the model's tokenizer. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Print the token ids of a text. Adds BOS/EOS as the model asks unless --no-special.")
public class TokenizeCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--text", required = true, description = "Text to tokenize.")
    String text;

    @Option(names = "--no-special", description = "Do not add BOS/EOS (llama.cpp add_special = false).")
    boolean noSpecial;

    @Option(names = "--parse-special", description = "Recognise control-token text such as <s> as those tokens.")
    boolean parseSpecial;

    @Option(names = "--json", description = "Print {\"tokens\":[...]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        // the vocabulary alone: tokenizing needs no weights, and llama.cpp's vocabulary files have none
        try (var vocabulary = modelOptions.openVocabulary()) {
            Tokenizer tok = vocabulary.tokenizer();
            int[] ids = tok.encode(text, !noSpecial, parseSpecial);
            if (json) {
                out.println("{\"tokens\":" + Json.ints(ids) + "}");
            } else {
                for (int id : ids) {
                    out.printf("%6d -> %s%n", id, Json.string(tok.tokenText(id)));
                }
            }
        }
        return 0;
    }
}
