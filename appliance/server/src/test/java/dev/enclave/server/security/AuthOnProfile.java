package dev.enclave.server.security;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** The server as installed: authentication on, a fresh data directory per test JVM (no admin yet). */
public class AuthOnProfile implements QuarkusTestProfile {

    public static final String DATA_DIR = "target/test-auth-" + ProcessHandle.current().pid();

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("enclave.auth.enabled", "true", "enclave.data-dir", DATA_DIR);
    }
}
