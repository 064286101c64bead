package dev.enclave.server.cli;

import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.server.model.ModelLoader;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The {@code --model FILE} option shared by the commands that load a model. */
public class ModelOptions {

    @Option(names = "--model", paramLabel = "FILE", description = "GGUF model file (default: the bundled stories260K).")
    Path model;

    TransformerModel open(RunOptions backend) throws IOException {
        return ModelLoader.open(model == null ? null : model.toString(), () -> backend.options(1));
    }

    /** The file's tokenizer only (a vocabulary-only GGUF has no weights). */
    ModelLoader.Vocabulary openVocabulary() throws IOException {
        return ModelLoader.openVocabulary(model == null ? null : model.toString());
    }
}
