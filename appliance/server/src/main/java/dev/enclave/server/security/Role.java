package dev.enclave.server.security;

import java.util.Locale;

/** What a user may do. {@code client} is API-only: it has no panel pages. */
public enum Role {
    ADMIN, TECHNICIAN, AUDITOR, CLIENT;

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Role of(String s) {
        try {
            return valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException("role must be admin, technician, auditor or client");
        }
    }
}
