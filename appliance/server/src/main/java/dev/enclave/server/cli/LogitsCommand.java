package dev.enclave.server.cli;

import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code enclave logits}: the logits of the last position after running the given token ids. */
@Command(name = "logits", mixinStandardHelpOptions = true,
        description = "Run token ids through the model and print the logits of the last position (float32).")
public class LogitsCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    RunOptions runOptions;

    @Option(names = "--tokens", required = true, split = ",", paramLabel = "ID", description = "Comma-separated token ids, e.g. 1,403,407.")
    int[] tokens;

    @Option(names = "--json", description = "Print {\"last_logits\":[...]}.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (TransformerModel model = modelOptions.open(runOptions)) {
            int vocab = model.config().vocabularySize();
            for (int t : tokens) {
                if (t < 0 || t >= vocab) {
                    System.err.println("enclave: token id " + t + " is outside the vocabulary [0, " + vocab + ")");
                    return 2;
                }
            }
            if (tokens.length > model.config().contextLength()) {
                System.err.println("enclave: " + tokens.length + " tokens exceed the context of " + model.config().contextLength());
                return 2;
            }
            InferenceState state = model.newState(tokens.length);
            float[] logits = model.ingest(state, tokens);
            if (json) {
                out.println("{\"last_logits\":" + Json.floats(logits) + "}");
            } else {
                int best = 0;
                for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
                out.printf("%d logits; argmax %d (%s) = %s%n", logits.length, best,
                        Json.string(model.tokenizer().tokenText(best)), logits[best]);
            }
        }
        return 0;
    }
}
