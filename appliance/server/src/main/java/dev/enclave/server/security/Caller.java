package dev.enclave.server.security;

import dev.enclave.rag.store.Principal;
import java.util.Set;

/** Who made the current request and how: by session (browser) or API key. */
public record Caller(String user, Role role, Session session, String apiKeyId, String scopes) {

    public Caller(String user, Role role, Session session, String apiKeyId) {
        this(user, role, session, apiKeyId, null);
    }

    public static final String KEY = "enclave.caller";

    /** When authentication is switched off (loopback development only): the local operator, an admin. */
    public static final Caller LOCAL = new Caller("local-operator", Role.ADMIN, null, null);

    public Principal principal() {
        return new Principal(user, Set.of(role.id()));
    }

    public boolean has(Role... roles) {
        for (Role r : roles) if (r == role) return true;
        return false;
    }
}
