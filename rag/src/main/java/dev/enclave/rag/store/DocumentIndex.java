package dev.enclave.rag.store;

import dev.enclave.rag.chunk.DocumentChunker;
import dev.enclave.rag.embed.Embedder;
import dev.enclave.rag.extract.DocumentExtractor;
import dev.enclave.rag.extract.ExtractedDocument;
import dev.enclave.rag.extract.ExtractionException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * The document index: a SQLite {@link Catalog} and a Lucene {@link ChunkIndex} in one data directory, kept
 * consistent across a crash at any moment.
 *
 * <p>Protocol for every change: (1) the catalog records the new state as {@code pending}/{@code deleting}
 * and commits; (2) Lucene applies it (replace-by-document-id, so a replay never duplicates) and commits;
 * (3) the catalog marks it {@code indexed} (or purges it). {@link #open} replays every document not in a
 * final state, so after kill -9 nothing is lost and nothing is indexed twice.
 */
public final class DocumentIndex implements AutoCloseable {

    /**
     * Default largest chunk, in embedder tokens: ~200-token chunks retrieve better than fuller ones for both bundled
     * embedders on SciFact (bge-small hybrid nDCG@10 0.735 at 254 vs 0.726 at its 510 limit).
     */
    public static final int DEFAULT_CHUNK_TOKENS = 254;

    public static final String META_EMBEDDER = "embedder";
    public static final String META_DIMENSION = "embedder.dimension";

    /** One thing to ingest: bytes under a source name (a path for crawls, a file name for uploads). */
    public record Source(String name, byte[] bytes, long mtime, String metadataJson) {
        public static Source of(Path file, String name) throws IOException {
            return new Source(name, Files.readAllBytes(file), Files.getLastModifiedTime(file).toMillis(), "{}");
        }
    }

    /** What happened to one source. */
    public record Outcome(String source, Long documentId, int chunks, String error, boolean unchanged) {
        public boolean ok() {
            return error == null;
        }
    }

    private final Path dir;
    private final Catalog catalog;
    private final ChunkIndex lucene;
    private final Embedder embedder;
    private final DocumentExtractor extractor;
    private final DocumentChunker chunker;

    private DocumentIndex(Path dir, Embedder embedder, DocumentExtractor extractor, int chunkTokens) throws IOException, SQLException {
        this.dir = dir;
        this.embedder = embedder;
        this.extractor = extractor;
        Files.createDirectories(dir);
        this.catalog = new Catalog(dir.resolve("catalog.sqlite"));
        this.lucene = new ChunkIndex(dir.resolve("lucene"));
        // chunks fit the embedder's input (less [CLS]/[SEP]); a smaller size may be asked for (finer retrieval)
        int limit = embedder.maxTokens() - 2;
        this.chunker = new DocumentChunker(chunkTokens > 0 ? chunkTokens : limit, 0.15, embedder::countTokens);
    }

    public static DocumentIndex open(Path dir, Embedder embedder) throws IOException, SQLException {
        return open(dir, embedder, new DocumentExtractor());
    }

    public static DocumentIndex open(Path dir, Embedder embedder, DocumentExtractor extractor)
            throws IOException, SQLException {
        return open(dir, embedder, extractor, DEFAULT_CHUNK_TOKENS);
    }

    /** @param chunkTokens largest chunk in embedder tokens; 0 for the embedder's own limit */
    public static DocumentIndex open(Path dir, Embedder embedder, DocumentExtractor extractor, int chunkTokens)
            throws IOException, SQLException {
        DocumentIndex index = new DocumentIndex(dir, embedder, extractor, chunkTokens);
        index.recover();
        index.checkEmbedder();
        return index;
    }

    public Catalog catalog() {
        return catalog;
    }

    public Embedder embedder() {
        return embedder;
    }

    ChunkIndex lucene() {
        return lucene;
    }

    public Path directory() {
        return dir;
    }

    // ---- recovery

    /** Set while a write is under way and left set when it failed: its changes wait in the catalog as pending. */
    private volatile boolean writeFailed;

    /** False while the index cannot be written, or a failed write's changes wait (see {@link #ensureWritable}). */
    public boolean writable() {
        return lucene.writable() && !writeFailed;
    }

    /**
     * Before every write: when an earlier write left Lucene's writer closed (a full disk), a new writer is opened
     * on the last commit and the catalog's pending changes are replayed, so the index works again once space is
     * back, without a restart. Throws when that is not possible yet.
     */
    public synchronized void ensureWritable() throws IOException, SQLException {
        if (lucene.writable() && !writeFailed) return;
        if (!lucene.writable()) lucene.reopen();
        recover();
        writeFailed = false;
    }

    /** Replays interrupted changes; returns how many documents were repaired. */
    synchronized int recover() throws IOException, SQLException {
        List<Catalog.DocumentRow> pending = catalog.documentsInState("pending");
        List<Catalog.DocumentRow> deleting = catalog.documentsInState("deleting");
        if (pending.isEmpty() && deleting.isEmpty()) return 0;
        List<Long> done = new ArrayList<>();
        for (Catalog.DocumentRow d : pending) {
            List<Catalog.ChunkRow> chunks = catalog.chunksOf(d.id());
            chunks = withEmbeddings(chunks);
            lucene.put(d.id(), d.collectionId(), chunks);
            done.add(d.id());
        }
        List<Long> gone = new ArrayList<>();
        for (Catalog.DocumentRow d : deleting) {
            lucene.delete(d.id());
            gone.add(d.id());
        }
        lucene.commit(Map.of("recovered", Integer.toString(done.size() + gone.size())));
        catalog.markState(done, "indexed");
        catalog.purge(gone);
        return done.size() + gone.size();
    }

    /** Applies every pending catalog change to Lucene with one commit (bulk loading uses this path too). */
    public synchronized int recoverPending() throws IOException, SQLException {
        return recover();
    }

    /** A different embedder (name or version) makes stored vectors meaningless: re-embed every chunk. */
    private void checkEmbedder() throws SQLException, IOException {
        String id = embedder.name() + "@" + embedder.version();
        Optional<String> stored = catalog.meta(META_EMBEDDER);
        if (stored.isPresent() && !stored.get().equals(id) && catalog.count("chunks") > 0) {
            reembedAll();
        }
        catalog.setMeta(META_EMBEDDER, id);
        catalog.setMeta(META_DIMENSION, Integer.toString(embedder.dimension()));
    }

    private void reembedAll() throws SQLException, IOException {
        List<Catalog.DocumentRow> all = catalog.documentsInState("indexed");
        // mark pending first: a crash mid-way resumes through recover()
        catalog.markState(all.stream().map(Catalog.DocumentRow::id).toList(), "pending");
        catalog.transaction(c -> {
            try (var s = c.createStatement()) {
                s.executeUpdate("UPDATE chunks SET embedding = NULL");
            }
            return null;
        });
        recover();
    }

    private List<Catalog.ChunkRow> withEmbeddings(List<Catalog.ChunkRow> chunks) throws SQLException {
        List<Integer> missing = new ArrayList<>();
        for (int i = 0; i < chunks.size(); i++) if (chunks.get(i).embedding() == null) missing.add(i);
        if (missing.isEmpty()) return chunks;
        List<String> texts = new ArrayList<>();
        for (int i : missing) texts.add(indexedText(chunks.get(i)));
        List<float[]> vectors = embedder.embedDocuments(texts);
        List<Catalog.ChunkRow> out = new ArrayList<>(chunks);
        catalog.transaction(c -> {
            try (var p = c.prepareStatement("UPDATE chunks SET embedding = ? WHERE id = ?")) {
                for (int k = 0; k < missing.size(); k++) {
                    Catalog.ChunkRow r = chunks.get(missing.get(k));
                    out.set(missing.get(k), new Catalog.ChunkRow(r.id(), r.documentId(), r.ordinal(), r.pageStart(),
                            r.pageEnd(), r.charStart(), r.charEnd(), r.heading(), r.text(), vectors.get(k)));
                    p.setBytes(1, Catalog.toBytes(vectors.get(k)));
                    p.setLong(2, r.id());
                    p.addBatch();
                }
                p.executeBatch();
            }
            return null;
        });
        return out;
    }

    private static String indexedText(Catalog.ChunkRow c) {
        return c.heading().isEmpty() || c.text().startsWith(c.heading()) ? c.text() : c.heading() + "\n" + c.text();
    }

    // ---- collections

    public Catalog.CollectionRow createCollection(String name, String description, List<String> readRoles,
                                                  List<String> readUsers) throws SQLException {
        return catalog.createCollection(name, description, readRoles, readUsers);
    }

    public Catalog.CollectionRow collection(String name) throws SQLException {
        return catalog.collection(name)
                .orElseThrow(() -> new IllegalArgumentException("no collection named '" + name + "'"));
    }

    public synchronized void deleteCollection(String name) throws SQLException, IOException {
        Catalog.CollectionRow c = collection(name);
        ensureWritable();
        writeFailed = true; // until this write is complete
        List<Long> ids = catalog.documents(c.id()).stream().map(Catalog.DocumentRow::id).toList();
        catalog.markState(ids, "deleting");
        lucene.deleteCollection(c.id());
        lucene.commit(Map.of("deleted-collection", name));
        catalog.purge(ids);
        catalog.deleteCollectionRow(c.id());
        writeFailed = false;
    }

    // ---- ingestion

    /**
     * Ingests a batch of sources into one collection: extraction and chunking per source, each source's chunks
     * embedded in the background while the next sources are prepared, storage in source order, one Lucene commit.
     * A source that fails is recorded (with its reason) and the rest go on. A source whose content hash is
     * unchanged is skipped. Same as {@code store(prepare(...))}; callers with a stream of batches should overlap
     * them instead (see {@link #prepare}).
     */
    public List<Outcome> ingest(String collection, List<Source> sources, Long jobId) throws SQLException, IOException {
        return store(prepare(collection, sources, jobId));
    }

    /**
     * A batch whose sources are extracted and chunked and whose embeddings are being computed on the embedder's
     * threads; nothing of it is stored until {@link #store}. {@link #cancel} it if it will not be stored.
     */
    public static final class PreparedBatch {
        private record Prepared(int at, Source src, String sha, ExtractedDocument doc,
                                List<DocumentChunker.Chunk> chunks, CompletableFuture<List<float[]>> vectors) {
        }

        private final Catalog.CollectionRow collection;
        private final Outcome[] outcomes; // in the order of the sources
        private final List<Prepared> prepared = new ArrayList<>();
        private boolean stored;

        private PreparedBatch(Catalog.CollectionRow collection, int size) {
            this.collection = collection;
            this.outcomes = new Outcome[size];
        }

        /** Stops the embeddings not yet started. */
        public void cancel() {
            for (Prepared p : prepared) p.vectors().cancel(false);
        }
    }

    /**
     * First half of {@link #ingest}: extracts and chunks each source and starts embedding its chunks, then returns
     * without waiting for them. Preparing the next batch before storing this one keeps the embedder busy while
     * this thread writes and commits (where the embedder outruns storage; on 2 cores, where it is the bottleneck,
     * measured neutral).
     */
    public synchronized PreparedBatch prepare(String collection, List<Source> sources, Long jobId)
            throws SQLException, IOException {
        Catalog.CollectionRow col = collection(collection);
        PreparedBatch batch = new PreparedBatch(col, sources.size());
        // each document's chunks start embedding as soon as it is chunked: the embedder's threads work while this
        // one extracts and chunks the next documents, and then stores the finished ones in order
        try {
            for (int at = 0; at < sources.size(); at++) {
                Source s = sources.get(at);
                String sha = sha256(s.bytes());
                Optional<Catalog.DocumentRow> existing = catalog.document(col.id(), s.name());
                if (existing.isPresent() && existing.get().sha256().equals(sha) && existing.get().state().equals("indexed")) {
                    if (existing.get().mtime() != s.mtime()) catalog.touch(existing.get().id(), s.mtime());
                    batch.outcomes[at] = new Outcome(s.name(), existing.get().id(), -1, null, true);
                    continue;
                }
                try {
                    ExtractedDocument doc = extractor.extract(s.name(), s.bytes());
                    List<DocumentChunker.Chunk> chunks = chunker.chunk(doc);
                    if (chunks.isEmpty()) throw new ExtractionException("no text found (scanned image without OCR?)");
                    List<String> texts = new ArrayList<>(chunks.size());
                    for (DocumentChunker.Chunk c : chunks) texts.add(c.indexedText());
                    batch.prepared.add(new PreparedBatch.Prepared(at, s, sha, doc, chunks,
                            embedder.embedDocumentsAsync(texts)));
                } catch (ExtractionException e) {
                    catalog.recordError(jobId, col.id(), s.name(), e.getMessage());
                    batch.outcomes[at] = new Outcome(s.name(), null, 0, e.getMessage(), false);
                }
            }
        } catch (RuntimeException | SQLException e) {
            batch.cancel();
            throw e;
        }
        return batch;
    }

    /**
     * Batches ingested one after another with each prepared before the one before it is stored, so the embedder
     * never waits while this thread writes and commits. {@link #close} cancels a batch left unstored.
     */
    public final class BatchPipeline implements AutoCloseable {
        private final String collection;
        private final Long jobId;
        private PreparedBatch pending;

        private BatchPipeline(String collection, Long jobId) {
            this.collection = collection;
            this.jobId = jobId;
        }

        /** Starts embedding {@code sources}, then stores the batch submitted before: its outcomes, or none. */
        public List<Outcome> submit(List<Source> sources) throws SQLException, IOException {
            PreparedBatch next = prepare(collection, sources, jobId);
            List<Outcome> stored;
            try {
                stored = flush();
            } catch (SQLException | IOException | RuntimeException e) {
                next.cancel();
                throw e;
            }
            pending = next;
            return stored;
        }

        /** Stores the batch still prepared: its outcomes, or none. */
        public List<Outcome> flush() throws SQLException, IOException {
            if (pending == null) return List.of();
            PreparedBatch p = pending;
            pending = null;
            return store(p);
        }

        @Override
        public void close() {
            if (pending != null) pending.cancel();
            pending = null;
        }
    }

    public BatchPipeline pipeline(String collection, Long jobId) {
        return new BatchPipeline(collection, jobId);
    }

    /** Second half of {@link #ingest}: waits for the batch's embeddings, stores it and commits. Once only. */
    public synchronized List<Outcome> store(PreparedBatch batch) throws SQLException, IOException {
        if (batch.stored) throw new IllegalStateException("batch already stored");
        ensureWritable();
        batch.stored = true;
        Outcome[] outcomes = batch.outcomes;
        List<PreparedBatch.Prepared> prepared = batch.prepared;
        if (prepared.isEmpty()) return List.of(outcomes);
        List<Long> ids = new ArrayList<>();
        writeFailed = true; // until this write is complete
        for (int k = 0; k < prepared.size(); k++) {
            PreparedBatch.Prepared p = prepared.get(k);
            List<float[]> vectors;
            try {
                vectors = p.vectors().join();
            } catch (CompletionException | CancellationException e) {
                for (PreparedBatch.Prepared rest : prepared.subList(k, prepared.size())) rest.vectors().cancel(false);
                if (e.getCause() instanceof RuntimeException r) throw r;
                throw new IllegalStateException("embedding failed: " + e.getMessage(), e);
            }
            List<Catalog.ChunkRow> rows = new ArrayList<>(p.chunks().size());
            int v = 0;
            for (DocumentChunker.Chunk c : p.chunks()) {
                rows.add(new Catalog.ChunkRow(0, 0, c.ordinal(), c.pageStart(), c.pageEnd(), c.start(), c.end(),
                        c.heading(), c.text(), vectors.get(v++)));
            }
            List<int[]> pages = new ArrayList<>();
            for (ExtractedDocument.Page pg : p.doc().pages()) pages.add(new int[] {pg.number(), pg.start(), pg.end()});
            long id = catalog.putPending(batch.collection.id(), p.src().name(), p.doc().title(), p.doc().mediaType(),
                    p.src().bytes().length, p.src().mtime(), p.sha(), p.src().metadataJson(), pages, rows);
            lucene.put(id, batch.collection.id(), catalog.chunksOf(id));
            ids.add(id);
            outcomes[p.at()] = new Outcome(p.src().name(), id, rows.size(), null, false);
        }
        lucene.commit(Map.of("batch", Integer.toString(ids.size())));
        catalog.markState(ids, "indexed");
        writeFailed = false;
        return List.of(outcomes);
    }

    public Outcome ingest(String collection, Source source) throws SQLException, IOException {
        return ingest(collection, List.of(source), null).getFirst();
    }

    public synchronized void deleteDocument(long documentId) throws SQLException, IOException {
        ensureWritable();
        writeFailed = true; // until this write is complete
        catalog.markState(List.of(documentId), "deleting");
        lucene.delete(documentId);
        lucene.commit(Map.of("deleted", Long.toString(documentId)));
        catalog.purge(List.of(documentId));
        writeFailed = false;
    }

    public synchronized void deleteDocuments(List<Long> documentIds) throws SQLException, IOException {
        if (documentIds.isEmpty()) return;
        ensureWritable();
        writeFailed = true; // until this write is complete
        catalog.markState(documentIds, "deleting");
        for (long id : documentIds) lucene.delete(id);
        lucene.commit(Map.of("deleted", Integer.toString(documentIds.size())));
        catalog.purge(documentIds);
        writeFailed = false;
    }

    /** Same content under a new name: only the catalog changes. */
    public void rename(long documentId, String newSource, long mtime) throws SQLException {
        catalog.rename(documentId, newSource, mtime);
    }

    /** Re-reads nothing: rebuilds a document's Lucene entries from the catalog (the "re-index" action). */
    public synchronized void reindex(long documentId) throws SQLException, IOException {
        ensureWritable();
        writeFailed = true; // until this write is complete
        Catalog.DocumentRow d = catalog.document(documentId)
                .orElseThrow(() -> new IllegalArgumentException("no document " + documentId));
        catalog.markState(List.of(d.id()), "pending");
        recover();
        writeFailed = false;
    }

    /**
     * Compares the two stores: every indexed document has exactly its catalog chunks in Lucene, and Lucene holds
     * nothing else. Returns the problems found (empty when consistent).
     */
    public synchronized List<String> verify() throws SQLException, IOException {
        List<String> problems = new ArrayList<>();
        long expected = 0;
        for (Catalog.CollectionRow c : catalog.collections()) {
            for (Catalog.DocumentRow d : catalog.documents(c.id())) {
                if (!d.state().equals("indexed")) {
                    problems.add("document " + d.id() + " (" + d.source() + ") is " + d.state());
                    continue;
                }
                int want = catalog.chunksOf(d.id()).size();
                int have = lucene.countChunks(d.id());
                if (want != have) {
                    problems.add("document " + d.id() + " (" + d.source() + "): catalog has " + want
                            + " chunks, Lucene " + have);
                }
                expected += want;
            }
        }
        int total = lucene.numDocs();
        if (total != expected) problems.add("Lucene holds " + total + " chunks, the catalog " + expected);
        return problems;
    }

    public static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public synchronized void close() {
        try {
            lucene.close();
            catalog.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }
}
