package dev.enclave.server.cli;

import dev.enclave.runtime.generate.ContextShift;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.Speculation;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.sampling.Sampler;
import dev.enclave.runtime.sampling.SamplingParams;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code enclave generate}: continue a prompt, streaming the text to standard output. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt on the command line, streamed as it is produced.")
public class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    RunOptions runOptions;

    @Option(names = "--prompt", required = true, description = "Prompt text.")
    String prompt;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "128", description = "Tokens to generate at most (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temp", defaultValue = "0.8", description = "Temperature; 0 is greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-p", defaultValue = "0.95", description = "Nucleus sampling threshold (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep only the k most likely tokens; 0 disables (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--min-p", defaultValue = "0", description = "Drop tokens below min-p times the top probability (default: ${DEFAULT-VALUE}).")
    float minP;

    @Option(names = "--typical-p", defaultValue = "1", description = "Locally typical sampling mass; 1 disables (default: ${DEFAULT-VALUE}).")
    float typicalP;

    @Option(names = "--repeat-penalty", defaultValue = "1", description = "Penalty for tokens in the last 64; 1 disables (default: ${DEFAULT-VALUE}).")
    float repeatPenalty;

    @Option(names = "--frequency-penalty", defaultValue = "0", description = "OpenAI frequency penalty (default: ${DEFAULT-VALUE}).")
    float frequencyPenalty;

    @Option(names = "--presence-penalty", defaultValue = "0", description = "OpenAI presence penalty (default: ${DEFAULT-VALUE}).")
    float presencePenalty;

    @Option(names = "--seed", defaultValue = "-1", description = "Random seed; -1 picks one (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--ignore-eos", description = "Keep generating past the end-of-sequence token.")
    boolean ignoreEos;

    @Option(names = "--speculate", defaultValue = "off", paramLabel = "off|ngram|draft",
            description = "Speculative decoding: ngram guesses the next tokens from earlier text (prompt lookup), draft from the"
                    + " smaller --draft-model, and the model checks the guesses in one step; the answer is the one plain decoding"
                    + " gives (default: ${DEFAULT-VALUE}).")
    String speculate;

    @Option(names = "--draft-model", paramLabel = "FILE",
            description = "GGUF draft model for --speculate draft: smaller, with the same vocabulary as --model.")
    java.nio.file.Path draftModel;

    @Option(names = "--draft-max", defaultValue = "8", description = "Guessed tokens checked per step at most (default: ${DEFAULT-VALUE}).")
    int draftMax;

    @Option(names = {"-c", "--ctx"}, defaultValue = "0", paramLabel = "N",
            description = "Context positions for this run; 0: the prompt plus -n, at most the model's (default: ${DEFAULT-VALUE}).")
    int ctx;

    @Option(names = "--context-shift",
            description = "When the answer fills the context, drop the older half of it (whole KV blocks) after the first --keep"
                    + " tokens, turn the later keys to their new positions and go on (attention sinks and a recent window)."
                    + " Without it the answer ends at the context's end.")
    boolean contextShift;

    @Option(names = "--heavy-hitters",
            description = "With --context-shift: drop the blocks that received the least attention per query instead of the"
                    + " older half (H2O's heavy hitters; the most recent quarter and the first --keep tokens always stay; CPU backend).")
    boolean heavyHitters;

    @Option(names = "--keep", defaultValue = "4", paramLabel = "N",
            description = "Tokens at the start a context shift keeps, rounded up to a KV block (default: ${DEFAULT-VALUE}).")
    int keep;

    @Option(names = "--json", description = "Print one JSON object instead of streaming text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (maxTokens < 0) {
            System.err.println("enclave: -n must not be negative");
            return 2;
        }
        String mode = speculate.toLowerCase(java.util.Locale.ROOT);
        if (!List.of("off", "ngram", "draft").contains(mode)) {
            System.err.println("enclave: --speculate must be off, ngram or draft, not " + speculate);
            return 2;
        }
        if (!mode.equals("off") && (draftMax < 1 || draftMax > 32)) {
            System.err.println("enclave: --draft-max must be 1..32");
            return 2;
        }
        if (mode.equals("draft") != (draftModel != null)) {
            System.err.println(mode.equals("draft") ? "enclave: --speculate draft needs --draft-model FILE"
                    : "enclave: --draft-model is for --speculate draft");
            return 2;
        }
        if (ctx < 0 || keep < 0) {
            System.err.println("enclave: --ctx and --keep must not be negative");
            return 2;
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        long s = seed == -1 ? System.nanoTime() : seed;
        try (TransformerModel model = modelOptions.open(runOptions);
             TransformerModel drafts = draftModel == null ? null : dev.enclave.server.model.ModelLoader.open(draftModel.toString(), () -> runOptions.options(1))) {
            Speculation speculation = switch (mode) {
                case "ngram" -> new Speculation(draftMax, Speculation.NGRAM.minNgram(), Speculation.NGRAM.maxNgram());
                case "draft" -> {
                    dev.enclave.runtime.generate.ModelDrafter.checkVocabulary(model.tokenizer(), drafts.tokenizer());
                    yield Speculation.withDraftModel(draftMax, drafts);
                }
                default -> Speculation.OFF;
            };
            int[] tokens = model.tokenizer().encode(prompt, true, false);
            Sampler sampler = Sampler.of(new SamplingParams(temperature, topK, topP, minP, typicalP, repeatPenalty, 64,
                    frequencyPenalty, presencePenalty, java.util.Map.of(), s));
            GenerationRequest req = new GenerationRequest(tokens, maxTokens, sampler, List.of(), ignoreEos);
            if (!json) {
                out.print(prompt);
                out.flush();
            }
            Generator generator = new Generator(model, speculation, contextShift ? new ContextShift(keep, heavyHitters) : null);
            TokenListener stream = (t, text) -> {
                if (!json && !text.isEmpty()) {
                    out.print(text);
                    out.flush();
                }
                return true;
            };
            int positions = ctx > 0 ? Math.min(ctx, model.config().contextLength()) : 0;
            if (positions > 0 && tokens.length >= positions) {
                System.err.println("enclave: the prompt has " + tokens.length + " tokens, --ctx " + positions + " leaves no room for an answer");
                return 2;
            }
            GenerationResult r = positions > 0 ? generator.generate(model.newState(positions), req, stream) : generator.generate(req, stream);
            if (json) {
                out.println("{\"model\":" + Json.string(model.name())
                        + ",\"prompt_tokens\":" + Json.ints(tokens)
                        + ",\"tokens\":" + Json.ints(r.tokens())
                        + ",\"text\":" + Json.string(r.text())
                        + ",\"finish_reason\":" + Json.string(r.finishReason().openAiName)
                        + ",\"seed\":" + s
                        + ",\"prompt_ms\":" + r.promptNanos() / 1_000_000.0
                        + ",\"tg_tok_s\":" + r.tokensPerSecond()
                        + ",\"spec_steps\":" + r.speculation().steps()
                        + ",\"spec_drafted\":" + r.speculation().drafted()
                        + ",\"spec_accepted\":" + r.speculation().accepted()
                        + ",\"context_shifts\":" + generator.shifts() + "}");
            } else {
                out.println();
                System.err.printf("[enclave] %s: prompt %d tokens in %.1f ms; %d tokens at %.1f tok/s (%s)%s%s%n",
                        model.name(), tokens.length, r.promptNanos() / 1e6, r.completionTokens(), r.tokensPerSecond(),
                        r.finishReason().openAiName, speculation.enabled() ? String.format(java.util.Locale.ROOT,
                                "; %d of %d guesses kept in %d checks", r.speculation().accepted(), r.speculation().drafted(),
                                r.speculation().steps()) : "",
                        generator.shifts() > 0 ? "; " + generator.shifts() + " context shifts" : "");
            }
        }
        return 0;
    }
}
