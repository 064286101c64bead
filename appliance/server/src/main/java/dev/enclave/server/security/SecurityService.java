package dev.enclave.server.security;

import dev.enclave.server.audit.AuditLog;
import io.quarkus.runtime.StartupEvent;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Users, API keys, browser sessions, sign-in throttling and the audit log, under {@code enclave.data-dir}.
 *
 * <p>Authentication can be switched off ({@code enclave.auth.enabled=false}) only while the server listens on
 * loopback: the appliance refuses to start bound to another address without it, and refuses too while no admin
 * exists there (the first-start page would otherwise be open to the network) unless the installer provided the
 * admin password in {@code enclave.auth.admin-password-file}.
 */
@ApplicationScoped
public class SecurityService {

    private static final Logger LOG = Logger.getLogger(SecurityService.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    static final long SESSION_MILLIS = 8 * 3600_000L;
    /** Failed sign-ins per client address per minute, whatever the user names tried. */
    static final int FAILURES_PER_MINUTE = 20;

    private final boolean enabled;
    private final Path dataDir;
    private final String host;
    private final Optional<Path> adminPasswordFile;
    private final boolean logPrompts;
    private UserStore users;
    private AuditLog audit;
    private final Map<String, Session> sessions = new ConcurrentHashMap<>();
    private final Map<String, long[]> attempts = new ConcurrentHashMap<>(); // ip -> {windowStart, count}

    /** Outside the container (tests): the audit key beside the database. */
    public SecurityService(boolean enabled, Path dataDir, String host, Optional<Path> adminPasswordFile, boolean logPrompts,
                           Optional<String> tlsCertificate) {
        this(enabled, dataDir, host, adminPasswordFile, logPrompts, tlsCertificate, Optional.empty());
    }

    @jakarta.inject.Inject
    public SecurityService(@ConfigProperty(name = "enclave.auth.enabled", defaultValue = "true") boolean enabled,
                           @ConfigProperty(name = "enclave.data-dir", defaultValue = "data") Path dataDir,
                           @ConfigProperty(name = "quarkus.http.host", defaultValue = "127.0.0.1") String host,
                           @ConfigProperty(name = "enclave.auth.admin-password-file") Optional<Path> adminPasswordFile,
                           @ConfigProperty(name = "enclave.audit.log-prompts", defaultValue = "false") boolean logPrompts,
                           @ConfigProperty(name = "quarkus.http.ssl.certificate.files") Optional<String> tlsCertificate,
                           @ConfigProperty(name = "enclave.audit.key-file") Optional<Path> auditKey) {
        this.auditKey = auditKey.map(Path::toAbsolutePath);
        this.enabled = enabled;
        this.dataDir = dataDir.toAbsolutePath();
        this.host = host;
        this.adminPasswordFile = adminPasswordFile;
        this.logPrompts = logPrompts;
        this.tls = tlsCertificate.isPresent() && !tlsCertificate.get().isBlank();
    }

    private final boolean tls;
    private final Optional<Path> auditKey;

    void onStart(@Observes StartupEvent e) throws Exception {
        open();
        boolean loopback = isLoopback(host);
        if (!enabled && !loopback) {
            throw new IllegalStateException("refusing to listen on " + host + " with authentication switched off "
                    + "(enclave.auth.enabled=false is for loopback development only)");
        }
        if (!loopback && !tls) {
            throw new IllegalStateException("refusing plain HTTP on " + host + ": HTTP is for loopback development; "
                    + "serve with --tls (local CA) or --tls-cert/--tls-key");
        }
        if (enabled && !users.hasAdmin()) {
            if (adminPasswordFile.isPresent()) {
                String pw = Files.readString(adminPasswordFile.get(), StandardCharsets.UTF_8).strip();
                users.create("admin", pw, Role.ADMIN);
                audit("installer", "user.create", "admin", "role=admin (from admin-password-file)", "");
                LOG.info("admin account created from the installer's password file");
            } else if (!loopback) {
                throw new IllegalStateException("refusing to listen on " + host + " before an admin password is set: "
                        + "set one on loopback first (open the panel) or give enclave.auth.admin-password-file");
            } else {
                LOG.info("no admin yet: open the panel to set the admin password");
            }
        }
        audit("system", "server.start", host, enabled ? "auth on" : "auth off (loopback)", "");
    }

    synchronized void open() throws Exception {
        if (users == null) users = new UserStore(dataDir.resolve("security.sqlite"));
        if (audit == null) audit = new AuditLog(dataDir.resolve("audit.sqlite"), auditKey.orElse(dataDir.resolve("audit.key")));
    }

    static boolean isLoopback(String host) {
        if (host == null) return false;
        if (host.equals("localhost")) return true;
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (Exception e) {
            return false;
        }
    }

    public boolean enabled() {
        return enabled;
    }

    public boolean logPrompts() {
        return logPrompts;
    }

    public UserStore users() {
        return users;
    }

    public AuditLog auditLog() {
        return audit;
    }

    private volatile boolean hasAdmin;

    /** True until the first admin exists (cached: it never becomes true again once false). */
    public boolean needsSetup() throws Exception {
        if (!enabled || hasAdmin) return false;
        hasAdmin = users.hasAdmin();
        return !hasAdmin;
    }

    /** Appends to the audit log; a failure to audit is logged loudly but does not take the request down. */
    public void audit(String actor, String action, String target, String detail, String ip) {
        try {
            audit.append(actor, action, target, detail, ip);
        } catch (Exception e) {
            LOG.errorf(e, "AUDIT WRITE FAILED: %s %s %s", actor, action, target);
        }
    }

    private final LoginThrottle throttle = new LoginThrottle();

    /** Failed sign-ins per (user, address), with backoff. */
    public LoginThrottle throttle() {
        return throttle;
    }

    /** False when this address failed too often in the last minute (password spraying across names). */
    public boolean allowAttempt(String ip, long now) {
        if (attempts.size() > 10_000) attempts.values().removeIf(x -> now - x[0] > 60_000); // forget old windows
        long[] w = attempts.computeIfAbsent(ip, k -> new long[] {now, 0});
        synchronized (w) {
            if (now - w[0] > 60_000) {
                w[0] = now;
                w[1] = 0;
            }
            return w[1] < FAILURES_PER_MINUTE;
        }
    }

    public void recordFailure(String ip, long now) {
        long[] w = attempts.computeIfAbsent(ip, k -> new long[] {now, 0});
        synchronized (w) {
            w[1]++;
        }
    }

    public Session startSession(UserStore.User u) {
        long now = System.currentTimeMillis();
        if (sessions.size() > 1_000) sessions.values().removeIf(x -> x.expiresAt() < now); // expired ones nobody asked for
        String id = token();
        Session s = new Session(id, u.name(), u.role(), token(), System.currentTimeMillis() + SESSION_MILLIS);
        sessions.put(id, s);
        return s;
    }

    public Optional<Session> session(String id, long now) {
        if (id == null) return Optional.empty();
        Session s = sessions.get(id);
        if (s == null) return Optional.empty();
        if (s.expiresAt() < now) {
            sessions.remove(id);
            return Optional.empty();
        }
        return Optional.of(s);
    }

    public void endSession(String id) {
        if (id != null) sessions.remove(id);
    }

    /** Ends every session of a user (disabled, password reset). */
    public void endSessionsOf(String user) {
        sessions.values().removeIf(s -> s.user().equals(user));
    }

    private static String token() {
        byte[] b = new byte[32];
        RANDOM.nextBytes(b);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    @PreDestroy
    void close() {
        try {
            if (audit != null) audit.close();
            if (users != null) users.close();
        } catch (Exception e) {
            LOG.warn("closing security stores", e);
        }
    }
}
