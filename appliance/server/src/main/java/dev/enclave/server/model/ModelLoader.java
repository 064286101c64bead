package dev.enclave.server.model;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.model.TransformerModel;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens the model named on the command line or in configuration, or the one bundled in the application. */
public final class ModelLoader {

    /** Class-path location of the bundled default model (declared as a native-image resource). */
    public static final String BUNDLED_RESOURCE = "models/stories260K.gguf";
    public static final String BUNDLED_NAME = "stories260K";

    private ModelLoader() {
    }

    /** {@code path} null or blank means the bundled default model; options as the configuration gives them for one sequence. */
    public static TransformerModel open(String path) throws IOException {
        return open(path, () -> RuntimeConfig.options(1));
    }

    /**
     * {@code path} null or blank means the bundled default model. The options are made (the configuration read) on
     * another thread while the file's metadata is parsed.
     */
    public static TransformerModel open(String path, java.util.function.Supplier<RuntimeOptions> options) throws IOException {
        if (path == null || path.isBlank()) {
            return openBundled(options.get());
        }
        Path p = Path.of(path);
        if (!Files.isRegularFile(p)) {
            throw new IOException("model file not found: " + p.toAbsolutePath());
        }
        // the configuration (read cold by a CLI command: ~0.15 s) while the file's metadata is parsed (another
        // ~0.15 s): the kernels' warm-up, which the first token waits for, starts that much sooner. A thread of its
        // own, not the common pool: it inherits this thread's context class loader, which the configuration is
        // looked up by (the application's, under Quarkus's runner)
        java.util.concurrent.CompletableFuture<RuntimeOptions> made = java.util.concurrent.CompletableFuture.supplyAsync(options,
                task -> Thread.ofPlatform().daemon().name("enclave-config").start(task));
        GGUFFile gguf = GGUFFile.open(p);
        RuntimeOptions o;
        try {
            o = made.join();
        } catch (java.util.concurrent.CompletionException e) {
            gguf.close();
            throw e.getCause() instanceof RuntimeException r ? r : e;
        }
        return TransformerModel.load(p, gguf, o);
    }

    /** A GGUF file's tokenizer alone: enough for a vocabulary-only file (as llama.cpp ships), no weights touched. */
    public record Vocabulary(dev.enclave.runtime.tokenizer.Tokenizer tokenizer, GGUFFile gguf) implements AutoCloseable {
        @Override
        public void close() {
            gguf.close();
        }
    }

    public static Vocabulary openVocabulary(String path) throws IOException {
        GGUFFile gguf;
        if (path == null || path.isBlank()) {
            try (InputStream in = ModelLoader.class.getClassLoader().getResourceAsStream(BUNDLED_RESOURCE)) {
                if (in == null) throw new IllegalStateException("the bundled model " + BUNDLED_RESOURCE + " is missing from the application");
                gguf = GGUFFile.read(in.readAllBytes());
            }
        } else {
            Path p = Path.of(path);
            if (!Files.isRegularFile(p)) throw new IOException("model file not found: " + p.toAbsolutePath());
            gguf = GGUFFile.open(p);
        }
        try {
            return new Vocabulary(dev.enclave.runtime.tokenizer.Tokenizer.fromGGUF(gguf), gguf);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    public static TransformerModel openBundled(RuntimeOptions options) {
        try (InputStream in = ModelLoader.class.getClassLoader().getResourceAsStream(BUNDLED_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the bundled model " + BUNDLED_RESOURCE + " is missing from the application");
            }
            // Small enough to hold in memory; real models are memory-mapped from disk instead.
            return TransformerModel.load(BUNDLED_NAME, GGUFFile.read(in.readAllBytes()), options);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
