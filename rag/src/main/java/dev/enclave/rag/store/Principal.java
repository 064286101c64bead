package dev.enclave.rag.store;

import java.util.Set;

/** Who is asking: retrieval only reads collections this principal may read. */
public record Principal(String user, Set<String> roles) {

    public static final Principal SYSTEM = new Principal("system", Set.of("admin"));

    public boolean isAdmin() {
        return roles.contains("admin");
    }
}
