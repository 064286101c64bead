package dev.enclave.server;

import dev.enclave.server.model.ModelService;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.nio.file.Path;
import java.util.Optional;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/** Says, once the server is up, where it listens, what it serves and where it keeps its state. */
@ApplicationScoped
public class StartupBanner {

    void started(@Observes StartupEvent e, ModelService models,
                 @ConfigProperty(name = "quarkus.http.host", defaultValue = "127.0.0.1") String host,
                 @ConfigProperty(name = "quarkus.http.port", defaultValue = "8080") int port,
                 @ConfigProperty(name = "quarkus.http.ssl.certificate.files") Optional<String> tls,
                 @ConfigProperty(name = "quarkus.http.ssl-port", defaultValue = "8443") int sslPort,
                 @ConfigProperty(name = "enclave.data-dir", defaultValue = "data") Path dataDir) {
        boolean https = tls.isPresent() && !tls.get().isBlank();
        String shown = host.contains(":") ? "[" + host + "]" : host;
        System.err.println("enclave: serving " + models.modelId() + " on " + (https ? "https://" : "http://") + shown + ":"
                + (https ? sslPort : port) + " (data in " + dataDir.toAbsolutePath() + ")");
    }
}
