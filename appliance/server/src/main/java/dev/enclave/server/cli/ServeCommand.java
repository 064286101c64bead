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

    @Option(names = "--backend", paramLabel = "NAME",
            description = "Where the layers run: cpu, cpu-java, opencl, npu or auto (default: enclave.backend, else auto: the device profile's order).")
    String backend;

    @Option(names = "--kv-type", paramLabel = "TYPE", converter = RunOptions.KvPlanConverter.class,
            description = "KV cache type: f32, f16, q8, q4, q3, q2 (r: rotated), K/V such as q8/q4r, or one per layer, comma-separated "
                    + "(default: enclave.kv-type, else f32).")
    dev.enclave.runtime.backend.KvPlan kvType;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to bind (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "Port to listen on (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--tls", defaultValue = "${env:ENCLAVE_TLS:-false}",
            description = "Serve HTTPS only, with a certificate from the appliance's local CA (made on first start under DATA_DIR/tls) unless --tls-cert/--tls-key are given. Required on a non-loopback address.")
    boolean tls;

    @Option(names = "--tls-cert", paramLabel = "PEM", description = "Operator-supplied certificate chain (PEM).")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "PEM", description = "Operator-supplied private key (PEM, PKCS#8).")
    Path tlsKey;

    @Option(names = "--tls-name", paramLabel = "NAME", description = "Extra host name or IP address for the local CA's server certificate (repeatable).")
    java.util.List<String> tlsNames = new java.util.ArrayList<>();

    @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = "${env:ENCLAVE_DATA_DIR:-data}",
            description = "State: document index, users, audit log, TLS keys (default: $ENCLAVE_DATA_DIR or ./data).")
    Path dataDir;

    @Option(names = "--startup-training", hidden = true,
            description = "Serve the model on a free loopback port from a temporary data directory, answer one request of each kind,"
                    + " and exit: the run a JDK AOT cache is recorded from (./enclave and the installer make it).")
    boolean startupTraining;

    @Override
    public Integer call() {
        if (startupTraining) return training();
        if (model != null) {
            if (!Files.isRegularFile(model)) {
                System.err.println("enclave: model file not found: " + model.toAbsolutePath());
                return 2;
            }
            if (!dev.enclave.runtime.gguf.GGUFFile.hasMagic(model)) {
                System.err.println("enclave: not a GGUF model file: " + model.toAbsolutePath());
                return 2;
            }
            System.setProperty("enclave.model", model.toAbsolutePath().toString());
        }
        if (port < 0 || port > 65535) {
            System.err.println("enclave: --port must be between 0 and 65535");
            return 2;
        }
        if (port != 0) {
            // said plainly now, rather than as a failed start later
            try (java.net.ServerSocket probe = new java.net.ServerSocket()) {
                probe.setReuseAddress(true);
                probe.bind(new java.net.InetSocketAddress(host, port));
            } catch (java.io.IOException e) {
                System.err.println("enclave: cannot listen on " + host + ":" + port + ": " + e.getMessage()
                        + " (another server there? choose --port)");
                return 1;
            }
        }
        if (backend != null) {
            try {
                dev.enclave.runtime.backend.Backends.order(dev.enclave.runtime.RuntimeOptions.defaults().withBackend(backend));
            } catch (IllegalArgumentException e) {
                System.err.println("enclave: " + e.getMessage());
                return 2;
            }
            System.setProperty("enclave.backend", backend);
        }
        if (kvType != null) System.setProperty("enclave.kv-type", kvType.toString());
        System.setProperty("quarkus.http.host", host);
        System.setProperty("quarkus.http.port", Integer.toString(port));
        System.setProperty("enclave.data-dir", dataDir.toAbsolutePath().toString());
        if (tls || tlsCert != null) {
            if ((tlsCert == null) != (tlsKey == null)) {
                System.err.println("enclave: --tls-cert and --tls-key go together");
                return 2;
            }
            Path cert = tlsCert, key = tlsKey;
            if (cert == null) {
                try {
                    var files = dev.enclave.server.security.LocalCertificateAuthority.ensure(dataDir.resolve("tls"), tlsNames);
                    cert = files.serverCert();
                    key = files.serverKey();
                    System.err.println("enclave: HTTPS with the local CA's certificate; trust " + files.caCert().toAbsolutePath()
                            + " in browsers");
                } catch (Exception e) {
                    System.err.println("enclave: cannot create the local certificate authority: " + e.getMessage());
                    return 1;
                }
            }
            System.setProperty("quarkus.http.ssl-port", Integer.toString(port));
            System.setProperty("quarkus.http.ssl.certificate.files", cert.toAbsolutePath().toString());
            System.setProperty("quarkus.http.ssl.certificate.key-files", key.toAbsolutePath().toString());
            System.setProperty("quarkus.http.insecure-requests", "disabled");
        }
        int[] exit = {0};
        Quarkus.run(Server.class, (code, failure) -> {
            exit[0] = code;
            if (failure != null) {
                System.err.println("enclave: cannot start: " + dev.enclave.server.EnclaveMain.oneLine(failure));
                if (exit[0] == 0) exit[0] = 1;
            }
        });
        return exit[0];
    }

    /** {@code --startup-training}: this command on a free loopback port and a data directory of its own, and its requests. */
    private int training() {
        Path dir = null;
        try (java.net.ServerSocket free = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            dir = Files.createTempDirectory("enclave-training-");
            port = free.getLocalPort();
        } catch (java.io.IOException e) {
            System.err.println("enclave: training run: " + e.getMessage());
            return 1;
        }
        host = "127.0.0.1";
        dataDir = dir;
        tls = false;
        tlsCert = null;
        tlsKey = null;
        startupTraining = false;
        StartupTraining requests = new StartupTraining(port);
        Thread.ofPlatform().daemon().name("enclave-training").start(requests);
        try {
            int code = call();
            if (requests.failure() != null) {
                System.err.println("enclave: training run: " + requests.failure());
                return 1;
            }
            return code;
        } finally {
            TemporaryFiles.deleteTree(dir);
        }
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
