package dev.enclave.server.rag;

import dev.enclave.rag.crawl.FolderCrawler;
import dev.enclave.rag.embed.EmbeddingModel;
import dev.enclave.rag.embed.OnnxEmbedder;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.rag.retrieve.SearchHit;
import dev.enclave.rag.store.DocumentIndex;
import dev.enclave.rag.store.Principal;
import dev.enclave.server.security.AllowedRoots;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * The server's document index: opened on first use under {@code enclave.data-dir/rag} (so the API starts fast
 * and a box without documents never loads the embedder), with native libraries unpacked under
 * {@code enclave.data-dir/native}. Folder crawls run on one background thread; crawls interrupted by a crash or
 * reboot resume when the index opens.
 */
@ApplicationScoped
public class RagService {

    private static final Logger LOG = Logger.getLogger(RagService.class);

    private final Path dataDir;
    private final String embedderName;
    private final int threads;
    private final long maxUploadBytes;
    private final ExecutorService crawls = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "rag-crawl");
        t.setDaemon(true);
        return t;
    });
    private final Map<Long, FolderCrawler> running = new ConcurrentHashMap<>();
    private final Map<Long, FolderCrawler.Progress> live = new ConcurrentHashMap<>();

    private final int chunkTokens;
    private final AllowedRoots crawlRoots;
    private volatile DocumentIndex index;
    private OnnxEmbedder embedder;

    public RagService(@ConfigProperty(name = "enclave.data-dir", defaultValue = "data") Path dataDir,
                      @ConfigProperty(name = "enclave.rag.embedder", defaultValue = "minilm") String embedderName,
                      @ConfigProperty(name = "enclave.rag.threads") Optional<Integer> threads,
                      @ConfigProperty(name = "enclave.rag.max-upload-mb", defaultValue = "64") int maxUploadMb,
                      @ConfigProperty(name = "enclave.rag.chunk-tokens", defaultValue = "254") int chunkTokens,
                      @ConfigProperty(name = "enclave.rag.crawl-roots") Optional<List<String>> crawlRoots) {
        this.chunkTokens = chunkTokens;
        this.crawlRoots = new AllowedRoots(crawlRoots.orElse(List.of()), dataDir, "enclave.rag.crawl-roots");
        this.dataDir = dataDir.toAbsolutePath();
        this.embedderName = embedderName;
        this.threads = threads.orElse(Math.max(1, Runtime.getRuntime().availableProcessors()));
        this.maxUploadBytes = (long) maxUploadMb << 20;
    }

    /**
     * At start: upload bodies a killed process left behind (plaintext documents) are deleted, and when crawls were
     * interrupted (a crash, a reboot) the index is opened in the background, which resumes them, without waiting
     * for someone to use the document API first. Otherwise the index (and its embedder) opens on first use.
     */
    void onStart(@jakarta.enterprise.event.Observes io.quarkus.runtime.StartupEvent e) {
        Path uploads = uploadsDir();
        try {
            Files.createDirectories(uploads);
            try {
                Files.setPosixFilePermissions(uploads, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
            } catch (UnsupportedOperationException ignored) {
                // not a POSIX file system
            }
            try (var left = Files.list(uploads)) {
                for (Path p : left.toList()) {
                    if (Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) Files.deleteIfExists(p);
                }
            }
        } catch (java.io.IOException ex) {
            LOG.warnf("cannot clean the upload directory %s: %s", uploads, ex.getMessage());
        }
        if (interruptedCrawls()) {
            Thread.ofPlatform().daemon().name("rag-open").start(() -> {
                try {
                    index();
                } catch (RuntimeException ex) {
                    LOG.errorf("the document index could not be opened at start: %s", ex.getMessage());
                }
            });
        }
    }

    /**
     * Null when the index is writable (or not open yet); else why not, after one attempt to recover it (a new
     * Lucene writer and the catalog's pending changes replayed).
     */
    public String writeProblem() {
        DocumentIndex i = index;
        if (i == null || i.writable()) return null;
        try {
            i.ensureWritable();
            LOG.info("the document index is writable again");
            return null;
        } catch (Exception e) {
            return "the document index cannot be written: " + e.getMessage();
        }
    }

    /** Whether the catalog (if any) has crawls a stop interrupted; read without loading the embedder. */
    private boolean interruptedCrawls() {
        Path catalog = dataDir.resolve("rag").resolve("catalog.sqlite");
        if (!Files.isRegularFile(catalog)) return false;
        try (var c = new dev.enclave.rag.store.Catalog(catalog)) {
            return c.jobsInState("running").stream().anyMatch(j -> j.kind().equals("crawl"));
        } catch (Exception e) {
            LOG.warnf("cannot read the document catalog at start: %s", e.getMessage());
            return false;
        }
    }

    /** Whether the index is open (without opening it). */
    boolean isOpen() {
        return index != null;
    }

    /** Model id of the configured document embedder, without loading it. */
    public String embedderId() {
        return EmbeddingModel.named(embedderName).id;
    }

    public long maxUploadBytes() {
        return maxUploadBytes;
    }

    public Path uploadsDir() {
        return dataDir.resolve("uploads");
    }

    public DocumentIndex index() {
        DocumentIndex i = index;
        if (i != null) return i;
        synchronized (this) {
            if (index == null) {
                try {
                    Files.createDirectories(dataDir);
                    embedder = new OnnxEmbedder(EmbeddingModel.named(embedderName), dataDir.resolve("native"), threads);
                    index = DocumentIndex.open(dataDir.resolve("rag"), embedder,
                            new dev.enclave.rag.extract.DocumentExtractor(maxUploadBytes,
                                    dev.enclave.rag.extract.DocumentExtractor.DEFAULT_MAX_CHARS), chunkTokens);
                    LOG.infof("document index open at %s (embedder %s)", dataDir.resolve("rag"), embedder.name());
                    crawls.submit(this::resumeCrawls);
                } catch (Exception e) {
                    throw new IllegalStateException("cannot open the document index: " + e.getMessage(), e);
                }
            }
            return index;
        }
    }

    private void resumeCrawls() {
        try {
            // a root the operator has since taken off the list is not read again
            for (var j : index.catalog().jobsInState("running")) {
                if (!j.kind().equals("crawl")) continue;
                try {
                    crawlRoots.check(j.root(), true);
                } catch (AllowedRoots.NotAllowed e) {
                    index.catalog().recordError(j.id(), j.collectionId(), j.root(), "not resumed: " + e.getMessage());
                    index.catalog().updateJob(j.id(), "failed", 0, 0, 0, 0, 1);
                }
            }
            FolderCrawler crawler = new FolderCrawler(index, maxUploadBytes);
            crawler.resumeInterrupted(p -> live.put(p.jobId(), p));
        } catch (Exception e) {
            LOG.error("resuming interrupted crawls failed", e);
        }
    }

    public List<SearchHit> search(Principal principal, HybridRetriever.Query q) throws Exception {
        return new HybridRetriever(index()).search(principal, q);
    }

    /**
     * Starts a crawl of {@code path} into {@code collection} in the background; returns its job id. The folder must
     * be below a configured crawl root ({@link AllowedRoots}); its real path is what is crawled.
     */
    public synchronized long startCrawl(String collection, String path) throws Exception {
        DocumentIndex idx = index();
        var col = idx.collection(collection);
        if (running.containsKey(col.id())) {
            throw new IllegalStateException("a crawl of collection '" + collection + "' is already running");
        }
        Path root = crawlRoots.check(path, true);
        long job = idx.catalog().startJob(col.id(), "crawl", root.toString());
        FolderCrawler crawler = new FolderCrawler(idx, maxUploadBytes);
        running.put(col.id(), crawler);
        crawls.submit(() -> {
            try {
                crawler.runJob(job, p -> live.put(p.jobId(), p));
            } catch (Exception e) {
                LOG.errorf(e, "crawl of %s failed", root);
                try {
                    idx.catalog().updateJob(job, "failed", 0, 0, 0, 0, 1);
                    idx.catalog().recordError(job, col.id(), root.toString(), "crawl failed: " + e.getMessage());
                } catch (Exception ignored) {
                    // the index itself is failing; the log has it
                }
            } finally {
                running.remove(col.id());
            }
        });
        return job;
    }

    public boolean stopCrawl(String collection) throws Exception {
        var col = index().collection(collection);
        FolderCrawler c = running.get(col.id());
        if (c == null) return false;
        c.stop();
        return true;
    }

    public Optional<FolderCrawler.Progress> liveProgress(long jobId) {
        return Optional.ofNullable(live.get(jobId));
    }

    @PreDestroy
    void close() {
        running.values().forEach(FolderCrawler::stop);
        crawls.shutdown();
        try {
            crawls.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (this) {
            if (index != null) index.close();
            if (embedder != null) embedder.close();
        }
    }
}
