package dev.enclave.server.security;

import io.vertx.core.http.Cookie;
import io.vertx.core.http.CookieSameSite;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.net.URI;
import java.util.Optional;

/**
 * Runs before every other route: sets security headers, authenticates the caller (API key in
 * {@code Authorization: Bearer}, or the session cookie), enforces {@link AccessRules}, and checks the CSRF token
 * on every state-changing request made with a session cookie.
 */
@ApplicationScoped
public class AuthHandler {

    public static final String COOKIE = "enclave_session";
    static final String CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    private final SecurityService security;

    public AuthHandler(SecurityService security) {
        this.security = security;
    }

    void register(@Observes Router router) {
        router.route().order(-1000).handler(this::handle);
    }

    void handle(RoutingContext ctx) {
        var headers = ctx.response().headers();
        headers.set("Content-Security-Policy", CSP)
                .set("X-Content-Type-Options", "nosniff")
                .set("X-Frame-Options", "DENY")
                .set("Referrer-Policy", "no-referrer")
                .set("Cross-Origin-Opener-Policy", "same-origin");
        if (ctx.request().isSSL()) headers.set("Strict-Transport-Security", "max-age=31536000");
        String path = ctx.normalizedPath();
        boolean firstStart;
        try {
            firstStart = !security.enabled() || security.needsSetup();
        } catch (Exception e) {
            ctx.fail(500, e);
            return;
        }
        // before an admin exists (or with authentication off) the box answers the local operator only: a page on
        // another site that rebinds its name to 127.0.0.1 still sends its own name as Host
        if (firstStart && !loopbackHost(host(ctx))) {
            refuse(ctx, path, "this appliance answers only on a loopback name (127.0.0.1, localhost) until its admin password is set");
            return;
        }
        // a browser marks a request another site made it send: nothing that changes state is taken from one,
        // signed in or not (login CSRF, first-start setup, uploads)
        if (changesState(ctx.request().method()) && crossSite(ctx)) {
            Caller who = ctx.get(Caller.KEY);
            security.audit(who == null ? "" : who.user(), "csrf.rejected", ctx.request().method() + " " + path,
                    "cross-site request, Origin " + ctx.request().getHeader("Origin"), ip(ctx));
            refuse(ctx, path, "cross-site request refused");
            return;
        }
        if (!security.enabled()) {
            ctx.put(Caller.KEY, Caller.LOCAL);
            ctx.next();
            return;
        }
        if (AccessRules.open(path)) {
            ctx.next();
            return;
        }
        if (firstStart) {
            // loopback only (the server refuses to start elsewhere without an admin): the API serves the local
            // operator so a fresh checkout answers at once; the panel first asks for the admin password
            if (AccessRules.isApi(path)) {
                ctx.put(Caller.KEY, Caller.LOCAL);
                ctx.next();
            } else {
                ctx.response().setStatusCode(302).putHeader("Location", "/setup").end();
            }
            return;
        }
        long now = System.currentTimeMillis();
        Caller caller;
        try {
            caller = authenticate(ctx, now);
        } catch (Exception e) {
            ctx.fail(500, e);
            return;
        }
        if (caller == null) {
            deny(ctx, 401, path);
            return;
        }
        if (!AccessRules.allowed(ctx.request().method().name(), path).contains(caller.role())) {
            security.audit(caller.user(), "access.denied", ctx.request().method() + " " + path, "role=" + caller.role().id(),
                    ip(ctx));
            deny(ctx, 403, path);
            return;
        }
        if (caller.apiKeyId() != null && !KeyScopes.allows(caller.scopes(), ctx.request().method().name(), path)) {
            security.audit(caller.user(), "access.denied", ctx.request().method() + " " + path,
                    "key=" + caller.apiKeyId() + " scopes=" + caller.scopes(), ip(ctx));
            ctx.response().setStatusCode(403).putHeader("Content-Type", "application/json")
                    .end("{\"error\":{\"message\":\"this API key's scopes do not allow this request\",\"type\":\"permission_error\"}}");
            return;
        }
        if (caller.session() != null && changesState(ctx.request().method()) && !csrfOk(ctx, caller.session())) {
            security.audit(caller.user(), "csrf.rejected", ctx.request().method() + " " + path, "", ip(ctx));
            ctx.response().setStatusCode(403).putHeader("Content-Type", "application/json")
                    .end("{\"error\":{\"message\":\"missing or wrong CSRF token\",\"type\":\"permission_error\"}}");
            return;
        }
        ctx.put(Caller.KEY, caller);
        ctx.next();
    }

    private Caller authenticate(RoutingContext ctx, long now) throws Exception {
        String auth = ctx.request().getHeader("Authorization");
        if (auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7)) {
            Optional<UserStore.ApiKey> key = security.users().authenticateKey(auth.substring(7).trim(), now);
            return key.map(k -> new Caller(k.user(), k.role(), null, k.id(), k.scopes())).orElse(null);
        }
        Cookie c = ctx.request().getCookie(COOKIE);
        if (c == null) return null;
        return security.session(c.getValue(), now).map(s -> new Caller(s.user(), s.role(), s, null)).orElse(null);
    }

    /** The host the client asked for: HTTP/1.1's Host header, or HTTP/2's :authority (browsers use it over TLS). */
    static String host(RoutingContext ctx) {
        String h = ctx.request().getHeader("Host");
        if (h != null) return h;
        var authority = ctx.request().authority();
        if (authority == null) return null;
        String host = authority.host().contains(":") && !authority.host().startsWith("[") ? "[" + authority.host() + "]" : authority.host();
        return authority.port() < 0 ? host : host + ":" + authority.port();
    }

    /** Whether a Host header names this machine's loopback interface (with or without a port). */
    static boolean loopbackHost(String host) {
        if (host == null || host.isBlank()) return false;
        String h = host.strip().toLowerCase(java.util.Locale.ROOT);
        if (h.startsWith("[")) {
            int end = h.indexOf(']');
            return end > 0 && h.substring(1, end).equals("::1");
        }
        int colon = h.lastIndexOf(':');
        if (colon >= 0) h = h.substring(0, colon);
        if (h.endsWith(".")) h = h.substring(0, h.length() - 1);
        if (h.equals("localhost")) return true;
        return h.matches("127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}");
    }

    /**
     * A browser says another origin made this request: its fetch metadata says so, or (a browser without it) its
     * Origin is not ours or is opaque.
     */
    static boolean crossSite(RoutingContext ctx) {
        // fetch metadata first: with this server's Referrer-Policy no-referrer a browser sends "Origin: null" even
        // for its own same-origin form posts, and says "Sec-Fetch-Site: same-origin" beside it
        String site = ctx.request().getHeader("Sec-Fetch-Site");
        if (site != null) return site.equalsIgnoreCase("cross-site") || site.equalsIgnoreCase("same-site");
        String origin = ctx.request().getHeader("Origin");
        if (origin == null) return false;
        if (origin.equals("null")) return true;
        try {
            String host = host(ctx);
            return host == null || !host.equalsIgnoreCase(URI.create(origin).getRawAuthority());
        } catch (IllegalArgumentException e) {
            return true;
        }
    }

    private static void refuse(RoutingContext ctx, String path, String message) {
        ctx.response().setStatusCode(403).putHeader("Content-Type", AccessRules.isApi(path) ? "application/json" : "text/plain; charset=utf-8")
                .end(AccessRules.isApi(path) ? "{\"error\":{\"message\":\"" + message + "\",\"type\":\"permission_error\"}}" : message + "\n");
    }

    private static boolean changesState(HttpMethod m) {
        return !(m == HttpMethod.GET || m == HttpMethod.HEAD || m == HttpMethod.OPTIONS);
    }

    /** The token travels in a header (scripts) or in the form's action URL (plain forms); the origin must be ours. */
    private static boolean csrfOk(RoutingContext ctx, Session s) {
        String origin = ctx.request().getHeader("Origin");
        if (origin != null && !origin.equals("null")) {
            try {
                String host = host(ctx);
                if (host == null || !host.equalsIgnoreCase(URI.create(origin).getRawAuthority())) return false;
            } catch (IllegalArgumentException e) {
                return false;
            }
        }
        String token = ctx.request().getHeader("X-CSRF-Token");
        if (token == null) token = ctx.request().getParam("_csrf");
        return token != null && java.security.MessageDigest.isEqual(token.getBytes(), s.csrf().getBytes());
    }

    private static void deny(RoutingContext ctx, int status, String path) {
        if (AccessRules.isApi(path)) {
            if (status == 401) ctx.response().putHeader("WWW-Authenticate", "Bearer realm=\"enclave\"");
            ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json")
                    .end(status == 401
                            ? "{\"error\":{\"message\":\"authentication required: send an API key as 'Authorization: Bearer ek_…'\",\"type\":\"authentication_error\"}}"
                            : "{\"error\":{\"message\":\"your role may not use this endpoint\",\"type\":\"permission_error\"}}");
        } else if (status == 401) {
            ctx.response().setStatusCode(302).putHeader("Location", "/login").end();
        } else {
            ctx.response().setStatusCode(403).putHeader("Content-Type", "text/html; charset=utf-8")
                    .end("<!doctype html><title>Forbidden</title><link rel=stylesheet href=/panel.css>"
                            + "<main class=narrow><h1>Forbidden</h1><p>Your role may not open this page.</p>"
                            + "<p><a href=/>Back to the dashboard</a></p></main>");
        }
    }

    public static String ip(RoutingContext ctx) {
        var a = ctx.request().remoteAddress();
        return a == null ? "" : a.hostAddress();
    }

    static Cookie sessionCookie(Session s, boolean secure) {
        return Cookie.cookie(COOKIE, s.id()).setHttpOnly(true).setSecure(secure).setSameSite(CookieSameSite.STRICT)
                .setPath("/").setMaxAge(SecurityService.SESSION_MILLIS / 1000);
    }

    public static Caller caller(RoutingContext ctx) {
        Caller c = ctx.get(Caller.KEY);
        return c == null ? Caller.LOCAL : c;
    }
}
