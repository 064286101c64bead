package dev.enclave.server.model;

import dev.enclave.runtime.chat.ChatTemplate;
import dev.enclave.runtime.chat.TemplateException;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.Generator;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.TransformerModel;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * The loaded model and the threads that run generations on it. Weights are shared read-only; every request
 * gets its own KV cache. Requests beyond the worker count wait in a bounded queue; beyond that they are refused
 * (the API turns that into HTTP 429).
 */
@ApplicationScoped
@Startup
public class ModelService {

    private static final Logger LOG = Logger.getLogger(ModelService.class);

    private final TransformerModel model;
    private final Generator generator;
    private final Optional<ChatTemplate> chatTemplate;
    private final ThreadPoolExecutor workers;
    private final long createdEpochSeconds = System.currentTimeMillis() / 1000;

    public ModelService(@ConfigProperty(name = "enclave.model") Optional<String> modelPath,
                        @ConfigProperty(name = "enclave.workers", defaultValue = "2") int workerCount,
                        @ConfigProperty(name = "enclave.queue", defaultValue = "64") int queueLength) {
        try {
            long t0 = System.nanoTime();
            this.model = ModelLoader.open(modelPath.orElse(null));
            LOG.infof("loaded model %s (%s, %d layers, dim %d, vocab %d, context %d) in %d ms", model.name(),
                    model.config().architecture(), model.config().blockCount(), model.config().embeddingLength(),
                    model.config().vocabularySize(), model.config().contextLength(), (System.nanoTime() - t0) / 1_000_000);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        this.generator = new Generator(model);
        Optional<ChatTemplate> template;
        try {
            template = ChatTemplate.fromGGUF(model.gguf(), model.tokenizer());
        } catch (TemplateException e) {
            LOG.warnf("the model's chat template cannot be used (%s); chat falls back to plain text", e.getMessage());
            template = Optional.empty();
        }
        this.chatTemplate = template;
        AtomicInteger n = new AtomicInteger();
        this.workers = new ThreadPoolExecutor(workerCount, workerCount, 0, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(queueLength), r -> {
                    Thread t = new Thread(r, "enclave-generate-" + n.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
    }

    public TransformerModel model() {
        return model;
    }

    /** The model's chat template, when it has one that parses. */
    public Optional<ChatTemplate> chatTemplate() {
        return chatTemplate;
    }

    public String modelId() {
        return model.name();
    }

    public long createdEpochSeconds() {
        return createdEpochSeconds;
    }

    /** Runs {@code task} on a generation worker; throws {@link RejectedExecutionException} when the queue is full. */
    public void submit(Runnable task) {
        workers.execute(task);
    }

    public ExecutorService workers() {
        return workers;
    }

    /** Generates on the calling thread (which should be a worker). */
    public GenerationResult generate(GenerationRequest request, TokenListener listener) {
        return generator.generate(request, listener);
    }

    void shutdown(@Observes ShutdownEvent ev) {
        workers.shutdownNow();
        model.close();
    }
}
