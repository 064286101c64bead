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
        if (!security.enabled()) {
            ctx.put(Caller.KEY, Caller.LOCAL);
            ctx.next();
            return;
        }
        if (AccessRules.open(path)) {
            ctx.next();
            return;
        }
        boolean setup;
        try {
            setup = security.needsSetup();
        } catch (Exception e) {
            ctx.fail(500, e);
            return;
        }
        if (setup) {
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

    private static boolean changesState(HttpMethod m) {
        return !(m == HttpMethod.GET || m == HttpMethod.HEAD || m == HttpMethod.OPTIONS);
    }

    /** The token travels in a header (scripts) or in the form's action URL (plain forms); the origin must be ours. */
    private static boolean csrfOk(RoutingContext ctx, Session s) {
        String origin = ctx.request().getHeader("Origin");
        if (origin != null && !origin.equals("null")) {
            try {
                String host = ctx.request().getHeader("Host");
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
