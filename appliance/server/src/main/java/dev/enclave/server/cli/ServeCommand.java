package dev.enclave.server.cli;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.QuarkusApplication;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code enclave serve}: boots the Quarkus application (API, web page, health) and runs until stopped. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve the model over HTTP: OpenAI-compatible API under /v1, web page at /, health at /q/health.")
public class ServeCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "FILE", description = "GGUF model file (default: the bundled stories260K).")
    Path model;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to bind (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "Port to listen on (default: ${DEFAULT-VALUE}).")
    int port;

    @Override
    public Integer call() {
        if (model != null) {
            if (!Files.isRegularFile(model)) {
                System.err.println("enclave: model file not found: " + model.toAbsolutePath());
                return 2;
            }
            System.setProperty("enclave.model", model.toAbsolutePath().toString());
        }
        if (port < 0 || port > 65535) {
            System.err.println("enclave: --port must be between 0 and 65535");
            return 2;
        }
        System.setProperty("quarkus.http.host", host);
        System.setProperty("quarkus.http.port", Integer.toString(port));
        int[] exit = {0};
        Quarkus.run(Server.class, (code, failure) -> exit[0] = code);
        return exit[0];
    }

    /** The running server: waits until the process is asked to stop. */
    public static class Server implements QuarkusApplication {
        @Override
        public int run(String... args) {
            Quarkus.waitForExit();
            return 0;
        }
    }
}
