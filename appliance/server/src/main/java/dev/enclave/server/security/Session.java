package dev.enclave.server.security;

/** A signed-in browser: the cookie carries {@code id}; forms must echo {@code csrf}. */
public record Session(String id, String user, Role role, String csrf, long expiresAt) {
}
