package dev.enclave.server.security;

import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Set;

/**
 * What an API key may do, on top of its user's role: {@code inference} (OpenAI and Ollama routes: models,
 * generation, embeddings), {@code rag:read} (listing, search), {@code rag:write} (collections, uploads, crawls,
 * deletion), {@code metrics} ({@code /q/*}), or {@code api} for all of these. A key never opens panel pages: those
 * need a signed-in session.
 */
public final class KeyScopes {

    public static final Set<String> KNOWN = Set.of("api", "inference", "rag:read", "rag:write", "metrics");

    private KeyScopes() {
    }

    /** The scopes as stored: known names only, space-separated; empty input is {@code api}. */
    public static String normalize(String scopes) {
        if (scopes == null || scopes.isBlank()) return "api";
        Set<String> out = new LinkedHashSet<>();
        for (String s : scopes.toLowerCase(Locale.ROOT).split("[\\s,]+")) {
            if (s.isEmpty()) continue;
            if (!KNOWN.contains(s)) throw new IllegalArgumentException("unknown API key scope '" + s + "' (known: api, inference, rag:read, rag:write, metrics)");
            out.add(s);
        }
        return out.isEmpty() ? "api" : String.join(" ", out);
    }

    /** The scope a request needs, or null when no key may make it (a panel page). */
    public static String needed(String method, String path) {
        if (path.startsWith("/v1/") || path.startsWith("/api/")) return "inference";
        if (path.startsWith("/rag/")) {
            boolean read = method.equals("GET") || (method.equals("POST") && path.equals("/rag/search"));
            return read ? "rag:read" : "rag:write";
        }
        if (path.startsWith("/q/")) return "metrics";
        return null;
    }

    public static boolean allows(String scopes, String method, String path) {
        String need = needed(method, path);
        if (need == null) return false;
        for (String s : scopes.split(" ")) if (s.equals("api") || s.equals(need)) return true;
        return false;
    }
}
