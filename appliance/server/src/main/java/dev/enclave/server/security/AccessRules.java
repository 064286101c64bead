package dev.enclave.server.security;

import java.util.EnumSet;
import java.util.Set;

/**
 * Which roles may use which route: the one table every request passes through. First match wins; anything not
 * listed is a panel page, open to the roles that have the panel (not {@code client}, which is API-only).
 */
public final class AccessRules {

    /** No credentials needed: liveness/readiness, the sign-in and first-start pages and their stylesheet. */
    static final Set<String> OPEN_PREFIXES = Set.of("/q/health", "/login", "/setup", "/panel.css", "/favicon.ico");

    private static final Set<Role> API = EnumSet.of(Role.ADMIN, Role.TECHNICIAN, Role.CLIENT);
    private static final Set<Role> STAFF = EnumSet.of(Role.ADMIN, Role.TECHNICIAN);
    private static final Set<Role> PANEL = EnumSet.of(Role.ADMIN, Role.TECHNICIAN, Role.AUDITOR);
    private static final Set<Role> AUDIT = EnumSet.of(Role.ADMIN, Role.AUDITOR);
    private static final Set<Role> ADMIN = EnumSet.of(Role.ADMIN);

    private AccessRules() {
    }

    public static boolean open(String path) {
        for (String p : OPEN_PREFIXES) if (path.equals(p) || path.startsWith(p + "/") || path.startsWith(p + "?")) return true;
        return false;
    }

    /** API paths answer 401/403 in JSON; everything else is a page that redirects to sign-in. */
    public static boolean isApi(String path) {
        return path.startsWith("/v1/") || path.startsWith("/api/") || path.startsWith("/rag/") || path.startsWith("/q/");
    }

    public static Set<Role> allowed(String method, String path) {
        if (path.startsWith("/v1/") || path.startsWith("/api/")) return API;
        if (path.startsWith("/rag/")) {
            boolean read = method.equals("GET") || (method.equals("POST") && path.equals("/rag/search"));
            return read ? API : STAFF;
        }
        if (path.startsWith("/q/")) return PANEL;                  // metrics and dev endpoints
        if (path.startsWith("/admin/audit")) return AUDIT;
        if (path.startsWith("/admin/")) return ADMIN;
        if (path.startsWith("/documents") || path.startsWith("/models")) return STAFF;
        return PANEL;
    }
}
