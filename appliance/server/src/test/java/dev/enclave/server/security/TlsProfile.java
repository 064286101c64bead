package dev.enclave.server.security;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** HTTPS only, with a certificate from the appliance's local CA made before the server starts (as `serve --tls` does). */
public class TlsProfile implements QuarkusTestProfile {

    public static final Path DIR = Path.of("target/test-tls-" + ProcessHandle.current().pid());

    @Override
    public Map<String, String> getConfigOverrides() {
        try {
            var f = LocalCertificateAuthority.ensure(DIR.resolve("tls"), List.of("enclave.ward.local"));
            return Map.of("enclave.auth.enabled", "true", "enclave.data-dir", DIR.toString(),
                    "quarkus.http.ssl.certificate.files", f.serverCert().toAbsolutePath().toString(),
                    "quarkus.http.ssl.certificate.key-files", f.serverKey().toAbsolutePath().toString(),
                    "quarkus.http.insecure-requests", "disabled",
                    "quarkus.http.test-ssl-port", "0");
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
