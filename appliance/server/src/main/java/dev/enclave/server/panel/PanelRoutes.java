package dev.enclave.server.panel;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.enclave.rag.store.Catalog;
import dev.enclave.rag.store.DocumentIndex;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.server.audit.AuditLog;
import dev.enclave.server.model.ModelService;
import dev.enclave.server.rag.RagService;
import dev.enclave.server.security.AuthHandler;
import dev.enclave.server.security.Caller;
import dev.enclave.server.security.Role;
import dev.enclave.server.security.SecurityService;
import dev.enclave.server.security.UserStore;
import io.quarkus.qute.Location;
import io.quarkus.qute.Template;
import io.quarkus.qute.TemplateInstance;
import io.vertx.core.http.Cookie;
import io.vertx.core.http.CookieSameSite;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.eclipse.microprofile.config.ConfigProvider;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * The technicians' web panel: server-rendered Qute pages (sign-in, first start, dashboard, chat, documents,
 * models, users and keys, audit log, settings) with a little plain JavaScript ({@code panel.js}) for streaming,
 * uploads and live charts. Access is decided by {@link AuthHandler} before any handler here runs.
 */
@ApplicationScoped
public class PanelRoutes {

    private static final Logger LOG = Logger.getLogger(PanelRoutes.class);
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneOffset.UTC);
    private static final long STARTED = System.currentTimeMillis();

    @Location("base.html") Template base;
    @Location("login.html") Template login;
    @Location("dashboard.html") Template dashboard;
    @Location("chat.html") Template chat;
    @Location("documents.html") Template documents;
    @Location("models.html") Template models;
    @Location("users.html") Template users;
    @Location("audit.html") Template audit;
    @Location("settings.html") Template settings;

    private final SecurityService security;
    private final ModelService model;
    private final RagService rag;
    private final ObjectMapper json;
    private final Path modelsDir;
    private final Map<String, String> shownKeys = new ConcurrentHashMap<>(); // session -> key shown once

    public PanelRoutes(SecurityService security, ModelService model, RagService rag, ObjectMapper json,
                       @ConfigProperty(name = "enclave.models-dir", defaultValue = "models") Path modelsDir,
                       @ConfigProperty(name = "enclave.data-dir", defaultValue = "data") Path dataDir,
                       @ConfigProperty(name = "enclave.models.import-roots") Optional<List<String>> importRoots) {
        this.importRoots = new dev.enclave.server.security.AllowedRoots(importRoots.orElse(List.of()), dataDir, "enclave.models.import-roots");
        this.security = security;
        this.model = model;
        this.rag = rag;
        this.json = json;
        this.modelsDir = modelsDir.toAbsolutePath();
    }

    void register(@Observes Router router) {
        BodyHandler forms = BodyHandler.create(false).setBodyLimit(64 * 1024);
        for (String p : List.of("/login", "/setup", "/logout", "/admin/*", "/models/import", "/models/load", "/panel/conversation")) {
            router.route(p).handler(forms);
        }
        router.get("/login").blockingHandler(ctx -> entryPage(ctx, false), false);
        router.post("/login").blockingHandler(this::login, false);
        router.get("/setup").blockingHandler(ctx -> entryPage(ctx, true), false);
        router.post("/setup").blockingHandler(this::setup, false);
        router.post("/logout").handler(this::logout);
        router.get("/").blockingHandler(ctx -> page(ctx, dashboard, "dashboard", dashboardData()), false);
        router.get("/panel/stats").blockingHandler(this::stats, false);
        router.get("/chat").blockingHandler(ctx -> page(ctx, chat, "chat", Map.of("collections", collectionNames(ctx),
                "model", model.modelId())), false);
        router.get("/panel/conversation").blockingHandler(this::getConversation, false);
        router.put("/panel/conversation").blockingHandler(this::putConversation, false);
        router.get("/documents").blockingHandler(ctx -> page(ctx, documents, "documents", documentsData(ctx)), false);
        router.get("/documents/:id/text").blockingHandler(this::documentText, false);
        router.get("/models").blockingHandler(ctx -> page(ctx, models, "models", modelsData(null)), false);
        router.post("/models/import").blockingHandler(this::importModel, false);
        router.post("/models/load").blockingHandler(this::loadModel, false);
        router.get("/admin/users").blockingHandler(ctx -> page(ctx, users, "users", usersData(ctx, null)), false);
        router.post("/admin/users").blockingHandler(this::createUser, false);
        router.post("/admin/users/:name/:op").blockingHandler(this::userOp, false);
        router.post("/admin/keys").blockingHandler(this::createKey, false);
        router.post("/admin/keys/:id/revoke").blockingHandler(this::revokeKey, false);
        router.get("/admin/audit").blockingHandler(ctx -> page(ctx, audit, "audit", auditData(ctx, null)), false);
        router.post("/admin/audit/verify").blockingHandler(this::verifyAudit, false);
        router.get("/admin/audit/export").blockingHandler(this::exportAudit, false);
        router.get("/settings").blockingHandler(ctx -> page(ctx, settings, "settings", settingsData()), false);
        router.get("/admin/diagnostics").blockingHandler(this::diagnostics, false);
    }

    // ---- sign-in

    /** The sign-in form, or the first-start form while no admin exists; each page sends to the other when it does not apply. */
    private void entryPage(RoutingContext ctx, boolean setupPage) {
        try {
            if (security.needsSetup() != setupPage) {
                redirect(ctx, setupPage ? "/login" : "/setup");
                return;
            }
        } catch (Exception e) {
            ctx.fail(e);
            return;
        }
        html(ctx, 200, login.data("setup", setupPage).data("message", null));
    }

    private void login(RoutingContext ctx) {
        String user = ctx.request().getFormAttribute("user");
        String password = ctx.request().getFormAttribute("password");
        String ip = AuthHandler.ip(ctx);
        long now = System.currentTimeMillis();
        try {
            if (!security.allowAttempt(ip, now)) {
                security.audit(user == null ? "" : user, "auth.throttled", "login", "too many attempts from this address", ip);
                html(ctx, 429, login.data("setup", false).data("message", "Too many attempts. Wait a minute."));
                return;
            }
            // locked per (name, address), known names and unknown alike: the answer tells nothing about the name
            long locked = security.throttle().lockedFor(user, ip, now);
            if (locked > 0) {
                security.audit(user == null ? "" : user, "auth.locked", "login", "locked from this address", ip);
                html(ctx, 423, login.data("setup", false).data("message", lockedMessage(locked)));
                return;
            }
            UserStore.Login r = security.users().login(user, password, now);
            if (r != UserStore.Login.OK) {
                security.recordFailure(ip, now);
                long lock = security.throttle().failure(user, ip, now);
                security.audit(user == null ? "" : user, "auth.failure", "login", r.name().toLowerCase(Locale.ROOT), ip);
                html(ctx, lock > 0 ? 423 : 401, login.data("setup", false)
                        .data("message", lock > 0 ? lockedMessage(lock) : "Wrong user name or password."));
                return;
            }
            security.throttle().success(user, ip);
            UserStore.User u = security.users().find(user).orElseThrow();
            var session = security.startSession(u);
            security.audit(u.name(), "auth.login", "session", "role=" + u.role().id(), ip);
            ctx.response().addCookie(cookie(session.id(), ctx.request().isSSL(), false));
            redirect(ctx, u.role() == Role.CLIENT ? "/settings" : "/");
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private static String lockedMessage(long millis) {
        long minutes = Math.max(1, (millis + 59_999) / 60_000);
        return "Too many failed sign-ins for this name from this address: try again in " + minutes
                + (minutes == 1 ? " minute." : " minutes.") + " An admin can unlock it.";
    }

    private void setup(RoutingContext ctx) {
        try {
            if (!security.needsSetup()) {
                redirect(ctx, "/login");
                return;
            }
            String pw = ctx.request().getFormAttribute("password");
            if (pw == null || !pw.equals(ctx.request().getFormAttribute("confirm"))) {
                html(ctx, 400, login.data("setup", true).data("message", "The two passwords differ."));
                return;
            }
            try {
                security.users().create("admin", pw, Role.ADMIN);
            } catch (IllegalArgumentException e) {
                html(ctx, 400, login.data("setup", true).data("message", e.getMessage()));
                return;
            }
            security.audit("admin", "user.create", "admin", "role=admin (first start)", AuthHandler.ip(ctx));
            redirect(ctx, "/login");
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private void logout(RoutingContext ctx) {
        Caller c = AuthHandler.caller(ctx);
        if (c.session() != null) {
            security.endSession(c.session().id());
            security.audit(c.user(), "auth.logout", "session", "", AuthHandler.ip(ctx));
        }
        ctx.response().addCookie(cookie("", ctx.request().isSSL(), true));
        redirect(ctx, "/login");
    }

    private static Cookie cookie(String value, boolean secure, boolean expire) {
        Cookie c = Cookie.cookie(AuthHandler.COOKIE, value).setHttpOnly(true).setSecure(secure)
                .setSameSite(CookieSameSite.STRICT).setPath("/");
        c.setMaxAge(expire ? 0 : 8 * 3600);
        return c;
    }

    // ---- pages

    private void page(RoutingContext ctx, Template t, String page, Map<String, Object> data) {
        Caller c = AuthHandler.caller(ctx);
        TemplateInstance ti = t.instance();
        data.forEach(ti::data);
        ti.data("page", page).data("user", c.user()).data("role", c.role().id())
                .data("csrf", c.session() == null ? "" : c.session().csrf())
                .data("admin", c.role() == Role.ADMIN)
                .data("staff", c.has(Role.ADMIN, Role.TECHNICIAN))
                .data("auditor", c.has(Role.ADMIN, Role.AUDITOR))
                .data("version", version());
        html(ctx, 200, ti);
    }

    private Map<String, Object> dashboardData() {
        Map<String, Object> m = new LinkedHashMap<>(statsMap());
        var cfg = model.model().config();
        m.put("model", model.modelId());
        m.put("modelType", cfg.architecture() + " · " + fileType(model.model().gguf()));
        m.put("params", human(parameterCount(model.model().gguf()), ""));
        m.put("context", cfg.contextLength());
        m.put("backend", model.model().placement().toString());
        m.put("cpu", Runtime.getRuntime().availableProcessors() + " cores · " + System.getProperty("os.arch"));
        m.put("queued", m.get("queued"));
        m.put("kvUsed", m.get("kv"));
        m.put("kvFree", m.get("kvfree"));
        m.put("hitRate", m.get("hit"));
        m.put("memory", m.get("mem"));
        m.put("temperature", m.get("temp"));
        m.put("dataDir", rag.uploadsDir().getParent().toString());
        return m;
    }

    private Map<String, Object> statsMap() {
        var mt = model.metrics();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("at", System.currentTimeMillis());
        m.put("generated", mt.generatedTokens());
        m.put("queued", mt.queued());
        m.put("active", mt.active());
        m.put("kv", mt.kvBlocksUsed());
        m.put("kvfree", mt.kvBlocksFree());
        m.put("hit", String.format(Locale.ROOT, "%.0f%%", mt.prefixHitRate() * 100));
        m.put("mem", human(rss(), "B"));
        Runtime rt = Runtime.getRuntime();
        m.put("heap", human(rt.totalMemory() - rt.freeMemory(), "B"));
        m.put("disk", human(rag.uploadsDir().getParent().toFile().getUsableSpace() > 0
                ? rag.uploadsDir().getParent().toFile().getUsableSpace() : Path.of(".").toFile().getUsableSpace(), "B"));
        m.put("temp", SystemProbe.cpuTemperature().map(t -> String.format(Locale.ROOT, "%.0f °C", t)).orElse("not exposed"));
        m.put("power", SystemProbe.powerSource().orElse("power source not exposed"));
        m.put("uptime", duration(ManagementFactory.getRuntimeMXBean().getUptime()));
        return m;
    }

    private void stats(RoutingContext ctx) {
        sendJson(ctx, 200, json.valueToTree(statsMap()));
    }

    private List<String> collectionNames(RoutingContext ctx) {
        List<String> out = new ArrayList<>();
        try {
            var p = AuthHandler.caller(ctx).principal();
            for (Catalog.CollectionRow c : rag.index().catalog().collections()) if (c.readableBy(p)) out.add(c.name());
        } catch (Exception e) {
            LOG.warn("listing collections failed", e);
        }
        return out;
    }

    private Map<String, Object> documentsData(RoutingContext ctx) {
        List<Map<String, Object>> cols = new ArrayList<>();
        try {
            DocumentIndex idx = rag.index();
            var p = AuthHandler.caller(ctx).principal();
            for (Catalog.CollectionRow c : idx.catalog().collections()) {
                if (!c.readableBy(p)) continue;
                List<Map<String, Object>> docs = new ArrayList<>();
                for (Catalog.DocumentRow d : idx.catalog().documents(c.id())) {
                    docs.add(Map.of("id", d.id(), "title", d.title(), "source", d.source(), "type", d.mediaType(),
                            "bytes", human(d.size(), "B"), "version", d.version(), "state", d.state()));
                }
                List<Map<String, Object>> errors = new ArrayList<>();
                for (Catalog.ErrorRow e : idx.catalog().errors(c.id())) errors.add(Map.of("source", e.source(), "reason", e.reason()));
                Map<String, Object> cm = new LinkedHashMap<>();
                cm.put("name", c.name());
                cm.put("documents", docs.size());
                cm.put("docs", docs);
                cm.put("errors", errors);
                cols.add(cm);
            }
        } catch (Exception e) {
            LOG.warn("documents page", e);
        }
        return Map.of("collections", cols);
    }

    private void documentText(RoutingContext ctx) {
        try {
            long id = Long.parseLong(ctx.pathParam("id"));
            DocumentIndex idx = rag.index();
            Catalog.DocumentRow d = idx.catalog().document(id).orElse(null);
            if (d == null || !idx.catalog().collection(d.collectionId()).map(c -> c.readableBy(AuthHandler.caller(ctx).principal())).orElse(false)) {
                ctx.response().setStatusCode(404).end("no such document");
                return;
            }
            int from = intParam(ctx, "from", 0), to = intParam(ctx, "to", Integer.MAX_VALUE);
            StringBuilder sb = new StringBuilder("<!doctype html><meta charset=utf-8><link rel=stylesheet href=/panel.css><main><h1>")
                    .append(esc(d.title())).append("</h1><p class=muted>").append(esc(d.source())).append("</p>");
            for (Catalog.ChunkRow c : idx.catalog().chunksOf(id)) {
                boolean cited = c.charStart() < to && c.charEnd() > from;
                sb.append("<section class=card").append(cited ? " id=cited" : "").append("><p class=muted>page ")
                        .append(c.pageStart()).append(c.pageEnd() != c.pageStart() ? "–" + c.pageEnd() : "").append("</p><p>")
                        .append(cited ? "<mark>" : "").append(esc(c.text())).append(cited ? "</mark>" : "").append("</p></section>");
            }
            ctx.response().putHeader("Content-Type", "text/html; charset=utf-8").end(sb.append("</main>").toString());
        } catch (NumberFormatException e) {
            ctx.response().setStatusCode(400).end("bad document id");
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private void getConversation(RoutingContext ctx) {
        try {
            String m = security.users() == null ? "[]" : security.users().conversation(AuthHandler.caller(ctx).user());
            ctx.response().putHeader("Content-Type", "application/json").end("{\"messages\":" + m + "}");
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private void putConversation(RoutingContext ctx) {
        try {
            JsonNode body = json.readTree(ctx.body().asString());
            JsonNode msgs = body.get("messages");
            if (msgs == null || !msgs.isArray()) {
                ctx.response().setStatusCode(400).end();
                return;
            }
            security.users().saveConversation(AuthHandler.caller(ctx).user(), json.writeValueAsString(msgs));
            ctx.response().setStatusCode(204).end();
        } catch (Exception e) {
            ctx.response().setStatusCode(400).end();
        }
    }

    private Map<String, Object> modelsData(String message) {
        List<Map<String, Object>> list = new ArrayList<>();
        list.add(bundled());
        if (Files.isDirectory(modelsDir)) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(modelsDir, "*.gguf")) {
                for (Path p : ds) list.add(describe(p));
            } catch (Exception e) {
                LOG.warn("listing models", e);
            }
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("models", list);
        m.put("loaded", model.modelId());
        m.put("dir", modelsDir.toString());
        m.put("message", message);
        return m;
    }

    static final String BUNDLED_ROW = dev.enclave.server.model.ModelLoader.BUNDLED_NAME + " (bundled)";

    /** The model inside the application (served when no other is configured). */
    private Map<String, Object> bundled() {
        byte[] bytes = new byte[0];
        try (var in = PanelRoutes.class.getClassLoader().getResourceAsStream(dev.enclave.server.model.ModelLoader.BUNDLED_RESOURCE)) {
            if (in != null) bytes = in.readAllBytes();
        } catch (IOException e) {
            LOG.warn("reading the bundled model", e);
        }
        byte[] file = bytes;
        Map<String, Object> m = describe(BUNDLED_ROW, () -> GGUFFile.read(file), file.length);
        try {
            m.put("sha", HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(bytes)));
        } catch (java.security.NoSuchAlgorithmException e) {
            m.put("sha", "");
        }
        return m;
    }

    private Map<String, Object> describe(Path p) {
        long size;
        try {
            size = Files.size(p);
        } catch (IOException e) {
            size = -1;
        }
        Map<String, Object> m = describe(p.getFileName().toString(), () -> GGUFFile.open(p), size);
        m.put("sha", Sha256Cache.of(p));
        return m;
    }

    @FunctionalInterface
    private interface GgufSource {
        GGUFFile open() throws Exception;
    }

    /** A row of the models table: what the file's metadata says, or why it cannot be read. */
    private static Map<String, Object> describe(String name, GgufSource source, long size) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("file", name);
        try (GGUFFile g = source.open()) {
            m.put("arch", g.getString("general.architecture", "?"));
            m.put("params", human(parameterCount(g), ""));
            m.put("type", fileType(g));
            m.put("context", g.getInt(g.getString("general.architecture", "llama") + ".context_length", 0));
            m.put("bytes", size < 0 ? "" : human(size, "B"));
        } catch (Exception e) {
            m.put("arch", "unreadable: " + e.getMessage());
            m.put("params", "");
            m.put("type", "");
            m.put("context", "");
            m.put("bytes", "");
        }
        return m;
    }

    private final dev.enclave.server.security.AllowedRoots importRoots;

    private void importModel(RoutingContext ctx) {
        Caller c = AuthHandler.caller(ctx);
        String message;
        try {
            if (c.role() != Role.ADMIN) {
                ctx.response().setStatusCode(403).end();
                return;
            }
            String asked = String.valueOf(ctx.request().getFormAttribute("path"));
            Path src;
            try {
                // only below the configured import roots (removable media), and only a GGUF file, before any hashing
                src = importRoots.check(asked, false);
                if (!GGUFFile.hasMagic(src)) throw new dev.enclave.server.security.AllowedRoots.NotAllowed("not a GGUF file: " + asked);
            } catch (dev.enclave.server.security.AllowedRoots.NotAllowed e) {
                security.audit(c.user(), "model.import.refused", asked, e.getMessage(), AuthHandler.ip(ctx));
                page(ctx, models, "models", modelsData("Refused: " + e.getMessage()));
                return;
            }
            String want = String.valueOf(ctx.request().getFormAttribute("sha256")).toLowerCase(Locale.ROOT);
            String got = sha256(src);
            if (!got.equals(want)) {
                message = "Refused: SHA-256 of " + src + " is " + got + ", not the expected value.";
                security.audit(c.user(), "model.import.refused", src.toString(), "sha256 mismatch", AuthHandler.ip(ctx));
            } else {
                Files.createDirectories(modelsDir);
                Path tmp = modelsDir.resolve(src.getFileName() + ".part");
                Files.copy(src, tmp, StandardCopyOption.REPLACE_EXISTING);
                if (!sha256(tmp).equals(want)) throw new IllegalStateException("copy does not match its source");
                Files.move(tmp, modelsDir.resolve(src.getFileName()), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                message = "Imported " + src.getFileName() + " (SHA-256 verified).";
                security.audit(c.user(), "model.import", src.getFileName().toString(), "sha256=" + got, AuthHandler.ip(ctx));
            }
        } catch (Exception e) {
            message = "Import failed: " + e.getMessage();
        }
        page(ctx, models, "models", modelsData(message));
    }

    /** Switches the served model to a GGUF file of the models directory (admin only). */
    private void loadModel(RoutingContext ctx) {
        Caller c = AuthHandler.caller(ctx);
        String message;
        if (c.role() != Role.ADMIN) {
            ctx.response().setStatusCode(403).end();
            return;
        }
        String name = Optional.ofNullable(ctx.request().getFormAttribute("file")).orElse("");
        Path file = name.equals(BUNDLED_ROW) ? null : modelsDir.resolve(name).normalize();
        if (file == null && name.equals(BUNDLED_ROW)) {
            try {
                String from = model.modelId();
                String to = model.switchTo(null);
                security.audit(c.user(), "model.switch", to, "from " + from + " (bundled)", AuthHandler.ip(ctx));
                message = "Now serving " + to + " (was " + from + ").";
            } catch (Exception e) {
                message = "Could not load the bundled model: " + e.getMessage();
            }
        } else if (name.isBlank() || !file.getParent().equals(modelsDir) || !Files.isRegularFile(file)) {
            message = "No model named '" + name + "' in " + modelsDir + ".";
        } else {
            try {
                String from = model.modelId();
                String to = model.switchTo(file);
                security.audit(c.user(), "model.switch", to, "from " + from + " (" + file + ")", AuthHandler.ip(ctx));
                message = "Now serving " + to + " (was " + from + ").";
            } catch (Exception e) {
                security.audit(c.user(), "model.switch.failed", name, e.getMessage(), AuthHandler.ip(ctx));
                message = "Could not load " + name + ": " + e.getMessage();
            }
        }
        page(ctx, models, "models", modelsData(message));
    }

    private Map<String, Object> usersData(RoutingContext ctx, String message) {
        Map<String, Object> m = new LinkedHashMap<>();
        List<Map<String, Object>> us = new ArrayList<>();
        List<Map<String, Object>> ks = new ArrayList<>();
        try {
            long now = System.currentTimeMillis();
            for (UserStore.User u : security.users().users()) {
                us.add(Map.of("name", u.name(), "role", u.role().id(), "disabled", u.disabled(),
                        "state", u.disabled() ? "disabled" : u.lockedUntil() > now ? "locked" : "active"));
            }
            for (UserStore.ApiKey k : security.users().keys()) {
                ks.add(Map.of("id", k.id(), "user", k.user(), "scopes", k.scopes(),
                        "expires", k.expiresAt() == 0 ? "never" : TIME.format(Instant.ofEpochMilli(k.expiresAt())),
                        "state", k.revoked() ? "revoked" : k.usable(now) ? "active" : "expired", "active", k.usable(now)));
            }
        } catch (Exception e) {
            LOG.warn("users page", e);
        }
        Caller c = AuthHandler.caller(ctx);
        m.put("users", us);
        m.put("keys", ks);
        m.put("message", message);
        m.put("shownKey", c.session() == null ? null : shownKeys.remove(c.session().id()));
        return m;
    }

    private void createUser(RoutingContext ctx) {
        Caller c = AuthHandler.caller(ctx);
        String msg;
        try {
            String name = ctx.request().getFormAttribute("name");
            Role role = Role.of(ctx.request().getFormAttribute("role"));
            security.users().create(name, ctx.request().getFormAttribute("password"), role);
            security.audit(c.user(), "user.create", name, "role=" + role.id(), AuthHandler.ip(ctx));
            msg = "Created " + name + " (" + role.id() + ").";
        } catch (IllegalArgumentException e) {
            msg = e.getMessage();
        } catch (Exception e) {
            ctx.fail(e);
            return;
        }
        page(ctx, users, "users", usersData(ctx, msg));
    }

    private void userOp(RoutingContext ctx) {
        Caller c = AuthHandler.caller(ctx);
        String name = ctx.pathParam("name");
        String op = ctx.pathParam("op");
        String msg;
        try {
            switch (op) {
                case "disable" -> {
                    if (name.equals(c.user())) throw new IllegalArgumentException("you cannot disable yourself");
                    security.users().setDisabled(name, true);
                    security.endSessionsOf(name);
                    security.audit(c.user(), "user.disable", name, "sessions ended, keys revoked", AuthHandler.ip(ctx));
                    msg = "Disabled " + name + "; their sessions ended and keys were revoked.";
                }
                case "enable" -> {
                    security.users().setDisabled(name, false);
                    security.audit(c.user(), "user.enable", name, "", AuthHandler.ip(ctx));
                    msg = "Enabled " + name + ".";
                }
                case "role" -> {
                    Role role = Role.of(ctx.request().getFormAttribute("role"));
                    String before = security.users().find(name).map(u -> u.role().id()).orElse("?");
                    security.users().setRole(name, role);
                    security.endSessionsOf(name); // the new role applies from the next sign-in
                    security.audit(c.user(), "user.role", name, before + " -> " + role.id(), AuthHandler.ip(ctx));
                    msg = name + " is now " + role.id() + ".";
                }
                case "unlock" -> {
                    security.throttle().unlock(name);
                    security.audit(c.user(), "user.unlock", name, "failed sign-ins forgotten", AuthHandler.ip(ctx));
                    msg = "Unlocked " + name + ".";
                }
                case "reset" -> {
                    security.users().setPassword(name, ctx.request().getFormAttribute("password"));
                    security.throttle().unlock(name);
                    security.endSessionsOf(name);
                    security.audit(c.user(), "user.password.reset", name, "sessions ended", AuthHandler.ip(ctx));
                    msg = "New password set for " + name + ".";
                }
                default -> {
                    ctx.response().setStatusCode(404).end();
                    return;
                }
            }
        } catch (IllegalArgumentException e) {
            msg = e.getMessage();
        } catch (Exception e) {
            ctx.fail(e);
            return;
        }
        page(ctx, users, "users", usersData(ctx, msg));
    }

    private void createKey(RoutingContext ctx) {
        Caller c = AuthHandler.caller(ctx);
        try {
            String user = ctx.request().getFormAttribute("user");
            int days;
            try {
                days = Integer.parseInt(Optional.ofNullable(ctx.request().getFormAttribute("days")).orElse("90").strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("expiry must be a whole number of days");
            }
            // 0 is an explicit "never"; a negative count once made a key that never expired
            if (days < 0 || days > 3650) throw new IllegalArgumentException("expiry must be 0 (never) to 3650 days");
            long expires = days == 0 ? 0 : System.currentTimeMillis() + days * 86_400_000L;
            String[] key = security.users().createKey(user, ctx.request().getFormAttribute("scopes"), expires);
            security.audit(c.user(), "key.create", key[0], "for " + user + ", expires in " + days + " days", AuthHandler.ip(ctx));
            if (c.session() != null) shownKeys.put(c.session().id(), key[1]);
            redirect(ctx, "/admin/users");
        } catch (IllegalArgumentException e) {
            page(ctx, users, "users", usersData(ctx, e.getMessage()));
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private void revokeKey(RoutingContext ctx) {
        Caller c = AuthHandler.caller(ctx);
        try {
            String id = ctx.pathParam("id");
            boolean done = security.users().revokeKey(id);
            security.audit(c.user(), "key.revoke", id, done ? "" : "no such key", AuthHandler.ip(ctx));
            page(ctx, users, "users", usersData(ctx, done ? "Revoked key " + id + "." : "No key " + id + "."));
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private Map<String, Object> auditData(RoutingContext ctx, Map<String, Object> verification) {
        String actor = Optional.ofNullable(ctx.request().getParam("actor")).orElse("");
        String action = Optional.ofNullable(ctx.request().getParam("action")).orElse("");
        List<Map<String, Object>> rows = new ArrayList<>();
        try {
            for (AuditLog.Entry e : security.auditLog().list(actor, action, 500, 0)) rows.add(entryMap(e));
        } catch (Exception e) {
            LOG.warn("audit page", e);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("entries", rows);
        m.put("actor", actor);
        m.put("action", action);
        m.put("verification", verification);
        return m;
    }

    private static Map<String, Object> entryMap(AuditLog.Entry e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("seq", e.seq());
        m.put("at", TIME.format(Instant.ofEpochMilli(e.at())));
        m.put("actor", e.actor());
        m.put("action", e.action());
        m.put("target", e.target());
        m.put("detail", e.detail());
        m.put("ip", e.ip());
        m.put("hash", e.hash());
        return m;
    }

    private void verifyAudit(RoutingContext ctx) {
        try {
            AuditLog.Verification v = security.auditLog().verify();
            security.audit(AuthHandler.caller(ctx).user(), "audit.verify", "chain", v.ok() ? "intact" : v.reason(), AuthHandler.ip(ctx));
            String text = v.ok() ? "Chain intact: " + v.entries() + " entries, head " + v.headHash().substring(0, 16) + "…"
                    : "Chain BROKEN at entry " + v.firstBad() + ": " + v.reason();
            page(ctx, audit, "audit", auditData(ctx, Map.of("ok", v.ok(), "text", text)));
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private void exportAudit(RoutingContext ctx) {
        try {
            String actor = ctx.request().getParam("actor"), action = ctx.request().getParam("action");
            List<AuditLog.Entry> all = security.auditLog().list(actor, action, Integer.MAX_VALUE, 0);
            security.audit(AuthHandler.caller(ctx).user(), "audit.export", "entries", all.size() + " entries", AuthHandler.ip(ctx));
            if ("json".equals(ctx.request().getParam("format"))) {
                ArrayNode arr = json.createArrayNode();
                for (AuditLog.Entry e : all) arr.add(json.valueToTree(entryMap(e)));
                ctx.response().putHeader("Content-Type", "application/json")
                        .putHeader("Content-Disposition", "attachment; filename=audit.json").end(json.writeValueAsString(arr));
            } else {
                StringBuilder sb = new StringBuilder("seq,at,actor,action,target,detail,ip,prev_hash,hash\n");
                for (AuditLog.Entry e : all) {
                    sb.append(e.seq()).append(',').append(csv(TIME.format(Instant.ofEpochMilli(e.at())))).append(',')
                            .append(csv(e.actor())).append(',').append(csv(e.action())).append(',').append(csv(e.target()))
                            .append(',').append(csv(e.detail())).append(',').append(csv(e.ip())).append(',')
                            .append(e.prevHash()).append(',').append(e.hash()).append('\n');
                }
                ctx.response().putHeader("Content-Type", "text/csv; charset=utf-8")
                        .putHeader("Content-Disposition", "attachment; filename=audit.csv").end(sb.toString());
            }
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    private Map<String, Object> settingsData() {
        List<Map<String, Object>> list = new ArrayList<>();
        TreeMap<String, String> values = new TreeMap<>();
        var cfg = ConfigProvider.getConfig();
        for (String name : cfg.getPropertyNames()) {
            if (!(name.startsWith("enclave.") || name.equals("quarkus.http.host") || name.equals("quarkus.http.port"))) continue;
            values.put(name, redact(name, cfg.getOptionalValue(name, String.class).orElse("")));
        }
        values.forEach((k, v) -> list.add(Map.of("key", k, "value", v)));
        return Map.of("settings", list);
    }

    /** Settings whose value is a secret or names where one is kept; matched on whole words of the key. */
    private static final java.util.regex.Pattern SECRET = java.util.regex.Pattern.compile(
            "(^|[.\\-])(password|passwords|secret|secrets|token|tokens|credential|credentials|key|keys|key-file|key-files|private)([.\\-]file)?$"
                    + "|(^|[.\\-])(password|secret|credential|private)([.\\-]|$)");

    static String redact(String key, String value) {
        return SECRET.matcher(key.toLowerCase(Locale.ROOT)).find() ? "(hidden)" : value;
    }

    private void diagnostics(RoutingContext ctx) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try (ZipOutputStream zip = new ZipOutputStream(out)) {
                zip.putNextEntry(new ZipEntry("versions.txt"));
                zip.write(("enclave " + version() + "\njava " + System.getProperty("java.version") + " ("
                        + System.getProperty("java.vendor") + ")\nos " + System.getProperty("os.name") + " "
                        + System.getProperty("os.version") + " " + System.getProperty("os.arch") + "\ncpus "
                        + Runtime.getRuntime().availableProcessors() + "\nmodel " + model.modelId() + "\n")
                        .getBytes(StandardCharsets.UTF_8));
                zip.putNextEntry(new ZipEntry("settings.txt"));
                StringBuilder sb = new StringBuilder();
                for (var s : (List<?>) settingsData().get("settings")) {
                    Map<?, ?> m = (Map<?, ?>) s;
                    sb.append(m.get("key")).append('=').append(m.get("value")).append('\n');
                }
                zip.write(sb.toString().getBytes(StandardCharsets.UTF_8));
                zip.putNextEntry(new ZipEntry("metrics.json"));
                zip.write(json.writeValueAsBytes(statsMap()));
                zip.putNextEntry(new ZipEntry("audit-verification.txt"));
                zip.write(security.auditLog().verify().toString().getBytes(StandardCharsets.UTF_8));
            }
            security.audit(AuthHandler.caller(ctx).user(), "diagnostics.download", "bundle", "", AuthHandler.ip(ctx));
            ctx.response().putHeader("Content-Type", "application/zip")
                    .putHeader("Content-Disposition", "attachment; filename=enclave-diagnostics.zip")
                    .end(io.vertx.core.buffer.Buffer.buffer(out.toByteArray()));
        } catch (Exception e) {
            ctx.fail(e);
        }
    }

    // ---- helpers

    private static String csv(String s) {
        if (s == null) return "";
        // a leading =, +, - or @ would be a formula in a spreadsheet: neutralise it
        String v = !s.isEmpty() && "=+-@".indexOf(s.charAt(0)) >= 0 ? "'" + s : s;
        return v.contains(",") || v.contains("\"") || v.contains("\n") ? "\"" + v.replace("\"", "\"\"") + "\"" : v;
    }

    private static int intParam(RoutingContext ctx, String name, int dflt) {
        String v = ctx.request().getParam(name);
        try {
            return v == null ? dflt : Integer.parseInt(v);
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    static String esc(String s) {
        if (s == null) return "";
        StringBuilder sb = new StringBuilder(s.length());
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '&' -> sb.append("&amp;");
                case '"' -> sb.append("&quot;");
                case '\'' -> sb.append("&#39;");
                default -> sb.append(ch);
            }
        }
        return sb.toString();
    }

    private static long parameterCount(GGUFFile g) {
        long n = 0;
        for (var t : g.tensorList()) n += t.elements();
        return n;
    }

    private static String fileType(GGUFFile g) {
        java.util.Map<dev.enclave.runtime.gguf.GGMLType, Long> bytes = new java.util.HashMap<>();
        for (var t : g.tensorList()) bytes.merge(t.type(), 1L, Long::sum);
        return bytes.entrySet().stream().max(java.util.Map.Entry.comparingByValue()).map(e -> e.getKey().name()).orElse("?");
    }

    static String sha256(Path p) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(p)) {
            byte[] buf = new byte[1 << 20];
            int n;
            while ((n = in.read(buf)) > 0) md.update(buf, 0, n);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static long rss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("\\D+", "")) * 1024;
            }
        } catch (Exception ignored) {
            // not Linux
        }
        return Runtime.getRuntime().totalMemory();
    }

    static String human(long v, String unit) {
        if (unit.equals("B")) {
            if (v >= 1L << 30) return String.format(Locale.ROOT, "%.1f GiB", v / (double) (1L << 30));
            if (v >= 1L << 20) return String.format(Locale.ROOT, "%.1f MiB", v / (double) (1L << 20));
            if (v >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", v / 1024.0);
            return v + " B";
        }
        if (v >= 1_000_000_000) return String.format(Locale.ROOT, "%.2fB", v / 1e9);
        if (v >= 1_000_000) return String.format(Locale.ROOT, "%.1fM", v / 1e6);
        if (v >= 1_000) return String.format(Locale.ROOT, "%.1fK", v / 1e3);
        return Long.toString(v);
    }

    private static String duration(long ms) {
        long s = ms / 1000;
        return String.format(Locale.ROOT, "%dd %02dh %02dm %02ds", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    }

    private static String version() {
        String v = PanelRoutes.class.getPackage().getImplementationVersion();
        return v == null ? "0.1.0-SNAPSHOT" : v;
    }

    private static void redirect(RoutingContext ctx, String to) {
        ctx.response().setStatusCode(303).putHeader("Location", to).end();
    }

    private static void html(RoutingContext ctx, int status, TemplateInstance t) {
        ctx.response().setStatusCode(status).putHeader("Content-Type", "text/html; charset=utf-8")
                .putHeader("Cache-Control", "no-store").end(t.render());
    }

    private void sendJson(RoutingContext ctx, int status, JsonNode body) {
        try {
            ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(json.writeValueAsString(body));
        } catch (Exception e) {
            ctx.fail(e);
        }
    }
}
