package dev.enclave.server.model;

import dev.enclave.runtime.chat.ChatTemplate;
import dev.enclave.runtime.chat.TemplateException;
import dev.enclave.runtime.serve.ContinuousBatchScheduler;
import dev.enclave.runtime.serve.EngineProvider;
import dev.enclave.runtime.serve.InferenceEngine;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.server.inference.AnswerTokens;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Optional;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * The loaded model and the continuous-batching scheduler that runs every generation on it: requests share one
 * paged KV pool and one batched forward pass per step; prompts reuse cached prefixes. Requests beyond the active
 * limit wait in a bounded queue; beyond that they are refused (the API turns that into HTTP 429).
 */
@ApplicationScoped
@Startup
public class ModelService {

    private static final Logger LOG = Logger.getLogger(ModelService.class);

    /** What is being served; replaced as a whole when an operator switches models. */
    private volatile ServedModel loaded;
    private final ContinuousBatchScheduler.Settings settings;

    public ModelService(@ConfigProperty(name = "enclave.model") Optional<String> modelPath,
                        @ConfigProperty(name = "enclave.scheduler.max-active", defaultValue = "8") int maxActive,
                        @ConfigProperty(name = "enclave.scheduler.queue", defaultValue = "64") int queueLength,
                        @ConfigProperty(name = "enclave.scheduler.token-budget", defaultValue = "64") int tokenBudget,
                        @ConfigProperty(name = "enclave.scheduler.kv-memory-mb", defaultValue = "1024") long kvMemoryMb,
                        @ConfigProperty(name = "enclave.scheduler.block-size", defaultValue = "16") int blockSize,
                        @ConfigProperty(name = "enclave.scheduler.timeout-seconds", defaultValue = "600") long timeoutSeconds,
                        @ConfigProperty(name = "enclave.threads") Optional<Integer> threads,
                        @ConfigProperty(name = "enclave.battery-saver", defaultValue = "false") String batterySaver,
                        @ConfigProperty(name = "enclave.battery-saver.threads", defaultValue = "2") int batteryThreads,
                        @ConfigProperty(name = "enclave.battery-saver.max-tokens-per-s", defaultValue = "8") double batteryTokensPerSecond,
                        @ConfigProperty(name = "enclave.scheduler.speculate", defaultValue = "ngram") String speculate,
                        @ConfigProperty(name = "enclave.scheduler.draft-max", defaultValue = "8") int draftMax,
                        @ConfigProperty(name = "enclave.scheduler.draft-model") Optional<String> draftModelPath,
                        @ConfigProperty(name = "enclave.scheduler.context-shift", defaultValue = "false") boolean contextShift,
                        @ConfigProperty(name = "enclave.scheduler.context-keep", defaultValue = "4") int contextKeep,
                        @ConfigProperty(name = "enclave.scheduler.context-shift-heavy-hitters", defaultValue = "false") boolean heavyHitters) {
        boolean saving = batterySaver.equals("true") || (batterySaver.equals("auto") && onBattery());
        int t = saving ? batteryThreads : threads.orElse(0);
        this.threads = t;
        this.tokensPerSecondCap = saving ? batteryTokensPerSecond : 0;
        if (saving) LOG.infof("battery saver: %d threads, at most %.1f tokens/s", batteryThreads, batteryTokensPerSecond);
        this.settings = newSettings(maxActive, queueLength, tokenBudget, blockSize, kvMemoryMb, timeoutSeconds, speculate, draftMax,
                draftModelPath).withContextShift(contextShift ? new dev.enclave.runtime.generate.ContextShift(contextKeep, heavyHitters) : null);
        try {
            this.draftModel = speculate.strip().equalsIgnoreCase("draft") ? ModelLoader.open(draftModelPath.get(), this::runtimeOptions) : null;
            this.loaded = load(ModelLoader.open(modelPath.orElse(null), this::runtimeOptions));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private ContinuousBatchScheduler.Settings newSettings(int maxActive, int queueLength, int tokenBudget, int blockSize, long kvMemoryMb,
                                                          long timeoutSeconds, String speculate, int draftMax, Optional<String> draftModelPath) {
        return new ContinuousBatchScheduler.Settings(maxActive, queueLength, tokenBudget, blockSize,
                kvMemoryMb << 20, timeoutSeconds * 1000, tokensPerSecondCap, switch (speculate.strip().toLowerCase(java.util.Locale.ROOT)) {
                    case "off" -> dev.enclave.runtime.generate.Speculation.OFF;
                    case "ngram" -> new dev.enclave.runtime.generate.Speculation(draftMax, dev.enclave.runtime.generate.Speculation.NGRAM.minNgram(),
                            dev.enclave.runtime.generate.Speculation.NGRAM.maxNgram());
                    case "draft" -> {
                        if (draftModelPath.isEmpty()) throw new IllegalArgumentException("enclave.scheduler.speculate=draft needs enclave.scheduler.draft-model");
                        yield new dev.enclave.runtime.generate.Speculation(draftMax, dev.enclave.runtime.generate.Speculation.NGRAM.minNgram(),
                                dev.enclave.runtime.generate.Speculation.NGRAM.maxNgram());
                    }
                    default -> throw new IllegalArgumentException("enclave.scheduler.speculate must be off, ngram or draft, not " + speculate);
                });
    }

    /** Whether a sequence that fills its context shifts it and goes on (enclave.scheduler.context-shift). */
    public boolean contextShift() {
        return settings.contextShift() != null;
    }

    private final int threads;
    /** The draft model for speculative decoding (enclave.scheduler.speculate=draft), or null. */
    private final TransformerModel draftModel;

    /** The runtime's options from the configuration, with the battery saver's thread count. */
    private dev.enclave.runtime.RuntimeOptions runtimeOptions() {
        dev.enclave.runtime.RuntimeOptions o = RuntimeConfig.options(settings.maxActive());
        return threads > 0 ? o.withThreads(threads) : o;
    }

    /** Validates everything about the model first (its chat template included); only then creates its scheduler. */
    private ServedModel load(TransformerModel model) {
        LOG.infof("loaded model %s (%s, %d layers, dim %d, vocab %d, context %d) on %s", model.name(),
                model.config().architecture(), model.config().blockCount(), model.config().embeddingLength(),
                model.config().vocabularySize(), model.config().contextLength(), model.placement());
        Optional<ChatTemplate> template;
        try {
            template = ChatTemplate.fromGGUF(model.gguf(), model.tokenizer());
            // a template that cannot render a short conversation within its budget is not used at all
            if (template.isPresent()) {
                template.get().render(java.util.List.of(java.util.Map.of("role", "user", "content", "Hello"),
                        java.util.Map.of("role", "assistant", "content", "Hi."), java.util.Map.of("role", "user", "content", "Tell me more.")),
                        null, true);
            }
        } catch (TemplateException | StackOverflowError e) {
            LOG.warnf("the model's chat template cannot be used (%s); chat falls back to plain text",
                    e instanceof StackOverflowError ? "nested too deeply" : e.getMessage());
            template = Optional.empty();
        }
        InferenceEngine engine = newEngine(model);
        return new ServedModel(model, engine, template, System.currentTimeMillis() / 1000, new AnswerTokens(model.tokenizer()));
    }

    /**
     * The engine that runs {@code model}: a whole-model engine when one runs it ({@link EngineProvider}, e.g. a Genie
     * dialog on the NPU), else the scheduler over the runtime's forward pass, whose KV pool lives on the Java heap: a pool
     * larger than the heap can still take is refused with what to change, instead of an OutOfMemoryError that ends the
     * process without a word.
     */
    private InferenceEngine newEngine(TransformerModel model) {
        Optional<InferenceEngine> own = EngineProvider.find(model, model.options());
        if (own.isPresent()) return own.get();
        if (dev.enclave.runtime.backend.Backends.isEngine(model.options().backend())) {
            throw new IllegalStateException("backend '" + model.options().backend() + "' cannot run " + model.name() + " on this machine");
        }
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        long wanted = Math.min(settings.kvBytes(), model.newKvPoolBytes(settings.blockSize(), settings.kvBytes()));
        String advice = "lower enclave.scheduler.kv-memory-mb (now " + (settings.kvBytes() >> 20) + ") or give Java a larger heap "
                + "(ENCLAVE_JAVA_OPTS=-Xmx...; now " + (rt.maxMemory() >> 20) + " MiB)";
        if (wanted > free * 9 / 10) {
            throw new IllegalStateException("the KV cache needs " + (wanted >> 20) + " MiB but the Java heap has about "
                    + (free >> 20) + " MiB left: " + advice);
        }
        ContinuousBatchScheduler.Settings settings = this.settings;
        if (draftModel != null) {
            try {
                dev.enclave.runtime.generate.ModelDrafter.checkVocabulary(model.tokenizer(), draftModel.tokenizer());
                settings = settings.withSpeculation(dev.enclave.runtime.generate.Speculation.withDraftModel(settings.speculation().maxDraft(), draftModel));
                LOG.infof("speculative decoding with the draft model %s", draftModel.name());
            } catch (IllegalArgumentException e) {
                LOG.warnf("draft model %s not used for %s (%s); guessing by n-grams", draftModel.name(), model.name(), e.getMessage());
            }
        }
        try {
            ContinuousBatchScheduler scheduler = new ContinuousBatchScheduler(model, settings);
            LOG.infof("scheduler: %d sequences at once, queue %d, %d tokens per step, KV pool %d blocks of %d positions",
                    settings.maxActive(), settings.maxQueue(), settings.tokenBudget(), scheduler.pool().blocks, settings.blockSize());
            return scheduler;
        } catch (OutOfMemoryError e) {
            throw new IllegalStateException("out of memory while making the KV cache: " + advice, e);
        }
    }

    /** The model served now, as one snapshot: a request takes it once and uses nothing else. */
    public ServedModel current() {
        return loaded;
    }

    /** Most sequences decoded at once, and requests that may wait beyond them (embeddings are admitted alike). */
    public int maxActive() {
        return settings.maxActive();
    }

    public int maxQueue() {
        return settings.maxQueue();
    }

    /**
     * Serves another GGUF file from now on. New requests go to the new model at once; requests already running on
     * the old one finish there (its scheduler drains, then closes and unmaps the file).
     */
    public synchronized String switchTo(java.nio.file.Path file) throws IOException {
        TransformerModel next = ModelLoader.open(file == null ? null : file.toString(), this::runtimeOptions); // null: the bundled model
        ServedModel old = loaded;
        try {
            loaded = load(next);
        } catch (RuntimeException | Error e) {
            next.close(); // nothing of a model that failed to load stays mapped or running
            throw e;
        }
        Thread.ofVirtual().name("model-drain").start(() -> {
            try {
                while (old.engine().metrics().active() + old.engine().metrics().queued() > 0) Thread.sleep(200);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            old.engine().close();
            old.model().close();
            LOG.infof("model %s unloaded", old.model().name());
        });
        return next.name();
    }

    private final double tokensPerSecondCap;

    /** True when the kernel reports a battery discharging and no mains power online. */
    static boolean onBattery() {
        java.nio.file.Path supplies = java.nio.file.Path.of("/sys/class/power_supply");
        boolean battery = false, mains = false;
        try (var ds = java.nio.file.Files.newDirectoryStream(supplies)) {
            for (var p : ds) {
                String type = read(p.resolve("type"));
                if (type.equals("Mains") && read(p.resolve("online")).equals("1")) mains = true;
                if (type.equals("Battery") && read(p.resolve("status")).equalsIgnoreCase("Discharging")) battery = true;
            }
        } catch (Exception e) {
            return false;
        }
        return battery && !mains;
    }

    private static String read(java.nio.file.Path p) {
        try {
            return java.nio.file.Files.readString(p).trim();
        } catch (Exception e) {
            return "";
        }
    }

    public TransformerModel model() {
        return loaded.model();
    }

    public String modelId() {
        return loaded.model().name();
    }

    public long createdEpochSeconds() {
        return loaded.createdEpochSeconds();
    }

    public dev.enclave.runtime.serve.EngineMetrics metrics() {
        return loaded.engine().metrics();
    }

    void shutdown(@Observes ShutdownEvent ev) {
        ServedModel l = loaded;
        l.engine().close();
        l.model().close();
        if (draftModel != null) draftModel.close();
    }
}
