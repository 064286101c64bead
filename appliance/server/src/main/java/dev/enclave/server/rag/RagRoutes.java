package dev.enclave.server.rag;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.rag.crawl.FolderCrawler;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.rag.retrieve.SearchHit;
import dev.enclave.rag.store.Catalog;
import dev.enclave.rag.store.DocumentIndex;
import dev.enclave.rag.store.Principal;
import dev.enclave.server.security.AllowedRoots;
import io.vertx.ext.web.FileUpload;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.jboss.logging.Logger;

/**
 * The document index over HTTP, under {@code /rag}: collections, multipart uploads, folder crawls, search and
 * deletion. Every handler runs on a worker thread (Lucene, SQLite and ONNX block). Errors use the same JSON
 * shape as the OpenAI routes: {@code {"error": {"message", "type"}}}.
 */
@ApplicationScoped
public class RagRoutes {

    private static final Logger LOG = Logger.getLogger(RagRoutes.class);

    private final RagService rag;
    private final ObjectMapper json;
    private final dev.enclave.server.security.SecurityService security;

    public RagRoutes(RagService rag, ObjectMapper json, dev.enclave.server.security.SecurityService security) {
        this.rag = rag;
        this.json = json;
        this.security = security;
    }

    private void audit(RoutingContext ctx, String action, String target, String detail) {
        security.audit(principal(ctx).user(), action, target, detail, dev.enclave.server.security.AuthHandler.ip(ctx));
    }

    void register(@Observes Router router) {
        router.post("/rag/collections/:name/documents").handler(BodyHandler.create(rag.uploadsDir().toString())
                .setBodyLimit(rag.maxUploadBytes()).setDeleteUploadedFilesOnEnd(true).setHandleFileUploads(true));
        router.route("/rag/*").handler(BodyHandler.create(false).setBodyLimit(1 << 20));
        router.get("/rag/collections").blockingHandler(ctx -> run(ctx, this::listCollections), false);
        router.post("/rag/collections").blockingHandler(ctx -> run(ctx, this::createCollection), false);
        router.delete("/rag/collections/:name").blockingHandler(ctx -> run(ctx, this::deleteCollection), false);
        router.get("/rag/collections/:name/documents").blockingHandler(ctx -> run(ctx, this::listDocuments), false);
        router.post("/rag/collections/:name/documents").blockingHandler(ctx -> run(ctx, this::upload), false);
        router.post("/rag/collections/:name/crawl").blockingHandler(ctx -> run(ctx, this::startCrawl), false);
        router.get("/rag/collections/:name/crawl").blockingHandler(ctx -> run(ctx, this::crawlStatus), false);
        router.delete("/rag/collections/:name/crawl").blockingHandler(ctx -> run(ctx, this::stopCrawl), false);
        router.delete("/rag/documents/:id").blockingHandler(ctx -> run(ctx, this::deleteDocument), false);
        router.post("/rag/documents/:id/reindex").blockingHandler(ctx -> run(ctx, this::reindex), false);
        router.post("/rag/search").blockingHandler(ctx -> run(ctx, this::search), false);
        router.route("/rag/*").failureHandler(ctx -> {
            if (ctx.statusCode() == 413) {
                error(ctx, 413, "the upload is larger than " + (rag.maxUploadBytes() >> 20) + " MB");
            } else if (ctx.statusCode() >= 400 && ctx.statusCode() < 500) {
                error(ctx, ctx.statusCode(), "request failed with status " + ctx.statusCode());
            } else {
                LOG.error("rag request failed", ctx.failure());
                error(ctx, 500, "internal error");
            }
        });
    }

    /** The no-space message in an error's chain, if that is what it is. */
    static String diskFull(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && (m.contains("No space left on device") || m.contains("SQLITE_FULL") || m.contains("database or disk is full"))) return m;
        }
        return null;
    }

    @FunctionalInterface
    interface Handler {
        void handle(RoutingContext ctx) throws Exception;
    }

    /** The authenticated caller as the index sees it (user and role), set by the AuthHandler. */
    public static Principal principal(RoutingContext ctx) {
        return dev.enclave.server.security.AuthHandler.caller(ctx).principal();
    }

    private void run(RoutingContext ctx, Handler h) {
        try {
            h.handle(ctx);
        } catch (HybridRetriever.AccessDeniedException e) {
            // a collection the caller may not read answers as one that does not exist; the denial is audited
            if (e.exists) audit(ctx, "access.denied", "collection/" + e.collection, ctx.request().method() + " " + ctx.normalizedPath());
            error(ctx, 404, e.getMessage());
        } catch (UnsupportedMediaType e) {
            error(ctx, 415, "Content-Type must be application/json");
        } catch (NoSuchDocument e) {
            if (e.denied) audit(ctx, "access.denied", "document/" + e.id, ctx.request().method() + " " + ctx.normalizedPath());
            error(ctx, 404, e.getMessage());
        } catch (IllegalArgumentException e) {
            error(ctx, e.getMessage() != null && e.getMessage().startsWith("no ") ? 404 : 400, e.getMessage());
        } catch (IllegalStateException e) {
            error(ctx, 409, e.getMessage());
        } catch (java.io.IOException | java.sql.SQLException e) {
            String why = diskFull(e);
            if (why != null) {
                LOG.errorf("document index write failed: %s", why);
                error(ctx, 507, "the appliance's disk is full: nothing was lost, but nothing more can be stored until space is freed (" + why + ")");
            } else {
                LOG.error("rag request failed", e);
                error(ctx, 500, "the document index failed: " + e.getMessage());
            }
        } catch (Exception e) {
            LOG.error("rag request failed", e);
            error(ctx, 500, "internal error: " + e.getMessage());
        }
    }

    private void listCollections(RoutingContext ctx) throws Exception {
        DocumentIndex idx = rag.index();
        ObjectNode out = json.createObjectNode();
        ArrayNode data = out.putArray("data");
        Principal p = principal(ctx);
        for (Catalog.CollectionRow c : idx.catalog().collections()) {
            if (!c.readableBy(p)) continue;
            data.add(collectionJson(idx, c));
        }
        send(ctx, 200, out);
    }

    private ObjectNode collectionJson(DocumentIndex idx, Catalog.CollectionRow c) throws Exception {
        ObjectNode o = json.createObjectNode().put("name", c.name()).put("description", c.description());
        c.readRoles().forEach(o.putArray("read_roles")::add);
        c.readUsers().forEach(o.putArray("read_users")::add);
        o.put("documents", idx.catalog().documents(c.id()).size());
        o.put("errors", idx.catalog().errors(c.id()).size());
        return o;
    }

    private void createCollection(RoutingContext ctx) throws Exception {
        JsonNode body = body(ctx);
        String name = body.path("name").asText("");
        List<String> roles = strings(body.get("read_roles"));
        List<String> users = strings(body.get("read_users"));
        DocumentIndex idx = rag.index();
        Catalog.CollectionRow c = idx.createCollection(name, body.path("description").asText(""), roles, users);
        audit(ctx, "collection.create", name, "read_roles=" + roles + " read_users=" + users);
        send(ctx, 201, collectionJson(idx, c));
    }

    private void deleteCollection(RoutingContext ctx) throws Exception {
        readable(ctx, rag.index());
        rag.index().deleteCollection(ctx.pathParam("name"));
        audit(ctx, "collection.delete", ctx.pathParam("name"), "");
        ctx.response().setStatusCode(204).end();
    }

    private void listDocuments(RoutingContext ctx) throws Exception {
        DocumentIndex idx = rag.index();
        Catalog.CollectionRow c = readable(ctx, idx);
        ObjectNode out = json.createObjectNode();
        ArrayNode docs = out.putArray("data");
        for (Catalog.DocumentRow d : idx.catalog().documents(c.id())) {
            docs.addObject().put("id", d.id()).put("source", d.source()).put("title", d.title())
                    .put("media_type", d.mediaType()).put("size", d.size()).put("version", d.version())
                    .put("state", d.state()).put("sha256", d.sha256());
        }
        ArrayNode errors = out.putArray("errors");
        for (Catalog.ErrorRow e : idx.catalog().errors(c.id())) {
            errors.addObject().put("source", e.source()).put("reason", e.reason()).put("at", e.at());
        }
        send(ctx, 200, out);
    }

    /**
     * The collection named in the path, when the caller may read it. Writing needs reading too: a technician cannot
     * overwrite, re-index or delete in a collection they cannot see, nor learn from the answer that it exists.
     */
    private Catalog.CollectionRow readable(RoutingContext ctx, DocumentIndex idx) throws Exception {
        String name = ctx.pathParam("name");
        var c = idx.catalog().collection(name);
        if (c.isEmpty() || !c.get().readableBy(principal(ctx))) {
            throw new HybridRetriever.AccessDeniedException(principal(ctx).user(), name, c.isPresent());
        }
        return c.get();
    }

    /** A JSON route was sent something else (a cross-site form can send text/plain without asking first). */
    static final class UnsupportedMediaType extends RuntimeException {
        UnsupportedMediaType() {
            super("Content-Type must be application/json", null, false, false);
        }
    }

    /** A document id the caller may not reach: unknown and unreadable answer alike. */
    static final class NoSuchDocument extends RuntimeException {
        final long id;
        final boolean denied;

        NoSuchDocument(long id, boolean denied) {
            super("no document " + id, null, false, false);
            this.id = id;
            this.denied = denied;
        }
    }

    private void upload(RoutingContext ctx) throws Exception {
        DocumentIndex idx = rag.index();
        Catalog.CollectionRow c = readable(ctx, idx);
        List<FileUpload> files = ctx.fileUploads();
        if (files.isEmpty()) throw new IllegalArgumentException("no file in the multipart body (field 'file')");
        List<DocumentIndex.Source> sources = new ArrayList<>();
        for (FileUpload f : files) {
            String name = Path.of(f.fileName()).getFileName().toString(); // never a client-chosen path
            if (name.isBlank()) name = "upload";
            sources.add(new DocumentIndex.Source(name, Files.readAllBytes(Path.of(f.uploadedFileName())),
                    System.currentTimeMillis(), "{}"));
        }
        List<DocumentIndex.Outcome> outcomes = idx.ingest(c.name(), sources, null);
        for (DocumentIndex.Outcome o : outcomes) {
            audit(ctx, o.ok() ? "document.upload" : "document.upload.failed", c.name() + "/" + o.source(),
                    o.ok() ? "id=" + o.documentId() + (o.unchanged() ? " unchanged" : " chunks=" + o.chunks()) : o.error());
        }
        ObjectNode out = json.createObjectNode();
        ArrayNode data = out.putArray("data");
        boolean anyOk = false;
        for (DocumentIndex.Outcome o : outcomes) {
            ObjectNode r = data.addObject().put("source", o.source());
            if (o.ok()) {
                anyOk = true;
                r.put("id", o.documentId()).put("status", o.unchanged() ? "unchanged" : "indexed");
                if (o.chunks() >= 0) r.put("chunks", o.chunks());
            } else {
                r.put("status", "failed").put("reason", o.error());
            }
        }
        send(ctx, anyOk ? 201 : 422, out);
    }

    private void startCrawl(RoutingContext ctx) throws Exception {
        JsonNode body = body(ctx);
        String path = body.path("path").asText("");
        if (path.isBlank()) throw new IllegalArgumentException("'path' (a directory on this machine) is required");
        readable(ctx, rag.index());
        long job;
        try {
            job = rag.startCrawl(ctx.pathParam("name"), path);
        } catch (AllowedRoots.NotAllowed e) {
            audit(ctx, "crawl.refused", ctx.pathParam("name"), "path=" + path + " " + e.getMessage());
            throw e;
        }
        audit(ctx, "crawl.start", ctx.pathParam("name"), "path=" + path + " job=" + job);
        send(ctx, 202, json.createObjectNode().put("job", job).put("state", "running"));
    }

    private void crawlStatus(RoutingContext ctx) throws Exception {
        DocumentIndex idx = rag.index();
        Catalog.CollectionRow c = readable(ctx, idx);
        List<Catalog.JobRow> jobs = idx.catalog().jobs(c.id());
        if (jobs.isEmpty()) throw new IllegalArgumentException("no crawl has run on collection '" + c.name() + "'");
        Catalog.JobRow j = jobs.getFirst();
        ObjectNode out = json.createObjectNode().put("job", j.id()).put("root", j.root()).put("state", j.state())
                .put("files_total", j.filesTotal()).put("files_done", j.filesDone())
                .put("bytes_total", j.bytesTotal()).put("bytes_done", j.bytesDone()).put("errors", j.errors());
        rag.liveProgress(j.id()).ifPresent(p -> out
                .put("files_per_s", round(p.filesPerSecond())).put("eta_s", round(p.etaSeconds())));
        send(ctx, 200, out);
    }

    private void stopCrawl(RoutingContext ctx) throws Exception {
        Catalog.CollectionRow c = readable(ctx, rag.index());
        boolean stopped = rag.stopCrawl(c.name());
        if (stopped) audit(ctx, "crawl.stop", c.name(), "");
        send(ctx, stopped ? 202 : 404, json.createObjectNode().put("stopping", stopped));
    }

    private void deleteDocument(RoutingContext ctx) throws Exception {
        Catalog.DocumentRow d = document(ctx);
        rag.index().deleteDocument(d.id());
        audit(ctx, "document.delete", d.source(), "id=" + d.id());
        ctx.response().setStatusCode(204).end();
    }

    private void reindex(RoutingContext ctx) throws Exception {
        Catalog.DocumentRow d = document(ctx);
        rag.index().reindex(d.id());
        audit(ctx, "document.reindex", d.source(), "id=" + d.id());
        send(ctx, 202, json.createObjectNode().put("reindexed", true));
    }

    /** The document named in the path, when it is in a collection the caller may read (writing needs reading). */
    private Catalog.DocumentRow document(RoutingContext ctx) throws Exception {
        long id;
        try {
            id = Long.parseLong(ctx.pathParam("id"));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("document id must be a number");
        }
        Catalog catalog = rag.index().catalog();
        var d = catalog.document(id);
        if (d.isEmpty()) throw new NoSuchDocument(id, false);
        var c = catalog.collection(d.get().collectionId());
        if (c.isEmpty() || !c.get().readableBy(principal(ctx))) throw new NoSuchDocument(id, true);
        return d.get();
    }

    private void search(RoutingContext ctx) throws Exception {
        JsonNode body = body(ctx);
        String query = body.path("query").asText("");
        int k = body.path("k").asInt(5);
        HybridRetriever.Mode mode;
        try {
            mode = HybridRetriever.Mode.valueOf(body.path("mode").asText("hybrid").toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("mode must be hybrid, bm25 or vector");
        }
        List<SearchHit> hits = rag.search(principal(ctx),
                new HybridRetriever.Query(query, strings(body.get("collections")), k, mode));
        ObjectNode out = json.createObjectNode();
        ArrayNode data = out.putArray("data");
        for (SearchHit h : hits) data.add(hitJson(json, h));
        send(ctx, 200, out);
    }

    static ObjectNode hitJson(ObjectMapper json, SearchHit h) {
        return json.createObjectNode().put("document_id", h.documentId()).put("collection", h.collection())
                .put("source", h.source()).put("title", h.title()).put("page_start", h.pageStart())
                .put("page_end", h.pageEnd()).put("char_start", h.charStart()).put("char_end", h.charEnd())
                .put("heading", h.heading()).put("text", h.text()).put("score", h.score());
    }

    private JsonNode body(RoutingContext ctx) {
        String ct = ctx.request().getHeader("Content-Type");
        if (ct == null || !ct.toLowerCase(Locale.ROOT).startsWith("application/json")) {
            throw new UnsupportedMediaType();
        }
        if (ctx.body() == null || ctx.body().length() == 0) throw new IllegalArgumentException("the request body is empty; expected a JSON object");
        try {
            JsonNode n = json.readTree(ctx.body().buffer().getBytes());
            if (n == null || !n.isObject()) throw new IllegalArgumentException("the request body must be a JSON object");
            return n;
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("malformed JSON in request body");
        }
    }

    static List<String> strings(JsonNode n) {
        List<String> out = new ArrayList<>();
        if (n == null || n.isNull()) return out;
        if (n.isTextual()) {
            out.add(n.asText());
            return out;
        }
        if (!n.isArray()) throw new IllegalArgumentException("expected an array of strings");
        for (JsonNode e : n) {
            if (!e.isTextual()) throw new IllegalArgumentException("expected an array of strings");
            out.add(e.asText());
        }
        return out;
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

    private void send(RoutingContext ctx, int status, JsonNode body) {
        if (ctx.response().ended()) return;
        try {
            ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json")
                    .end(json.writeValueAsString(body));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private void error(RoutingContext ctx, int status, String message) {
        ObjectNode err = json.createObjectNode();
        err.putObject("error").put("message", message == null ? "error" : message)
                .put("type", status >= 500 ? "server_error" : "invalid_request_error");
        send(ctx, status, err);
    }
}
