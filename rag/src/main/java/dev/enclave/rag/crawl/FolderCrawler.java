package dev.enclave.rag.crawl;

import dev.enclave.rag.store.Catalog;
import dev.enclave.rag.store.DocumentIndex;

import java.io.IOException;
import java.nio.file.FileVisitOption;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * Crawls a directory tree (a mounted share) into a collection, incrementally: a file whose size and mtime match
 * the catalog is skipped without being read; a changed file is re-ingested only if its SHA-256 changed; a file
 * that vanished is deleted from the index, unless the same content appeared under another name (a rename, which
 * only updates the catalog). Progress is written to the job row as it goes, so a crawl interrupted by a crash
 * or reboot resumes by simply running again: everything already done is skipped by size+mtime.
 */
public final class FolderCrawler {

    /** Files done/total, bytes done/total, errors, rate and ETA of a running crawl. */
    public record Progress(long jobId, String state, long filesTotal, long filesDone, long bytesTotal,
                           long bytesDone, long errors, double filesPerSecond, double etaSeconds) {
    }

    private static final int BATCH_FILES = 32;
    private static final long BATCH_BYTES = 32L << 20;

    private final DocumentIndex index;
    private final long maxFileBytes;
    private final AtomicBoolean stop = new AtomicBoolean();

    public FolderCrawler(DocumentIndex index, long maxFileBytes) {
        this.index = index;
        this.maxFileBytes = maxFileBytes;
    }

    /** Asks a running crawl to stop after its current batch; its job ends in state {@code stopped}. */
    public void stop() {
        stop.set(true);
    }

    /** Starts a new job and runs it to the end on the calling thread. */
    public Progress crawl(String collection, Path root, Consumer<Progress> progress) throws IOException, SQLException {
        Catalog.CollectionRow col = index.collection(collection);
        long job = index.catalog().startJob(col.id(), "crawl", root.toAbsolutePath().normalize().toString());
        return run(job, col, root, progress);
    }

    /** Runs (or continues) one job already recorded in the catalog. */
    public Progress runJob(long jobId, Consumer<Progress> progress) throws IOException, SQLException {
        Catalog.JobRow j = index.catalog().job(jobId)
                .orElseThrow(() -> new IllegalArgumentException("no ingestion job " + jobId));
        Catalog.CollectionRow col = index.catalog().collection(j.collectionId())
                .orElseThrow(() -> new IllegalArgumentException("the job's collection is gone"));
        return run(j.id(), col, Path.of(j.root()), progress);
    }

    /** Continues every crawl job left {@code running} by a crash or reboot. */
    public List<Progress> resumeInterrupted(Consumer<Progress> progress) throws IOException, SQLException {
        List<Progress> out = new ArrayList<>();
        for (Catalog.JobRow j : index.catalog().jobsInState("running")) {
            if (!j.kind().equals("crawl")) continue;
            Catalog.CollectionRow col = index.catalog().collection(j.collectionId()).orElse(null);
            if (col == null) {
                index.catalog().updateJob(j.id(), "failed", 0, 0, 0, 0, 0);
                continue;
            }
            out.add(run(j.id(), col, Path.of(j.root()), progress));
        }
        return out;
    }

    private record FileEntry(Path path, String source, long size, long mtime) {
    }

    private Progress run(long job, Catalog.CollectionRow col, Path root, Consumer<Progress> progress)
            throws IOException, SQLException {
        stop.set(false);
        Path base = root.toAbsolutePath().normalize();
        if (!Files.isDirectory(base)) {
            index.catalog().recordError(job, col.id(), base.toString(), "crawl root is not a directory");
            index.catalog().updateJob(job, "failed", 0, 0, 0, 0, 1);
            return new Progress(job, "failed", 0, 0, 0, 0, 1, 0, 0);
        }
        List<FileEntry> files = list(base);
        long bytesTotal = files.stream().mapToLong(FileEntry::size).sum();
        Map<String, Catalog.DocumentRow> known = new HashMap<>();
        for (Catalog.DocumentRow d : index.catalog().documents(col.id())) {
            if (d.source().startsWith(base + "/") || d.source().equals(base.toString())) known.put(d.source(), d);
        }
        Set<String> present = new HashSet<>();
        for (FileEntry f : files) present.add(f.source());
        // content of vanished documents, to recognise renames
        Map<String, Catalog.DocumentRow> vanishedBySha = new HashMap<>();
        for (Catalog.DocumentRow d : known.values()) if (!present.contains(d.source())) vanishedBySha.put(d.sha256(), d);

        long start = System.nanoTime();
        long filesDone = 0, bytesDone = 0, errors = 0;
        List<DocumentIndex.Source> batch = new ArrayList<>();
        long batchBytes = 0;
        // a batch left prepared by an error is cancelled on the way out
        try (BatchPipeline pipeline = new BatchPipeline(index, col.name(), job)) {
            index.catalog().updateJob(job, "running", files.size(), 0, bytesTotal, 0, 0);
            for (int i = 0; i < files.size(); i++) {
                if (stop.get()) break;
                FileEntry f = files.get(i);
                Catalog.DocumentRow d = known.get(f.source());
                if (d != null && d.size() == f.size() && d.mtime() == f.mtime() && d.state().equals("indexed")) {
                    filesDone++;
                    bytesDone += f.size();
                    continue;
                }
                if (f.size() > maxFileBytes) {
                    index.catalog().recordError(job, col.id(), f.source(), "file is "
                            + dev.enclave.rag.extract.DocumentExtractor.human(f.size()) + ", over the "
                            + dev.enclave.rag.extract.DocumentExtractor.human(maxFileBytes) + " limit");
                    errors++;
                    filesDone++;
                    bytesDone += f.size();
                    continue;
                }
                byte[] bytes;
                try {
                    bytes = Files.readAllBytes(f.path());
                } catch (IOException e) {
                    index.catalog().recordError(job, col.id(), f.source(), "cannot read: " + e.getMessage());
                    errors++;
                    filesDone++;
                    continue;
                }
                if (d == null) {
                    Catalog.DocumentRow moved = vanishedBySha.remove(DocumentIndex.sha256(bytes));
                    if (moved != null) {
                        index.rename(moved.id(), f.source(), f.mtime());
                        filesDone++;
                        bytesDone += f.size();
                        continue;
                    }
                }
                batch.add(new DocumentIndex.Source(f.source(), bytes, f.mtime(), "{}"));
                batchBytes += bytes.length;
                if (batch.size() >= BATCH_FILES || batchBytes >= BATCH_BYTES || i == files.size() - 1) {
                    if (pipeline.submit(batch, batchBytes)) {
                        index.catalog().updateJob(job, "running", files.size(), filesDone + pipeline.files, bytesTotal,
                                bytesDone + pipeline.bytes, errors + pipeline.errors);
                        progress.accept(progress(job, "running", files.size(), filesDone + pipeline.files, bytesTotal,
                                bytesDone + pipeline.bytes, errors + pipeline.errors, start));
                    }
                    batch = new ArrayList<>();
                    batchBytes = 0;
                }
            }
            if (!batch.isEmpty()) pipeline.submit(batch, batchBytes);
            pipeline.drain();
            filesDone += pipeline.files;
            bytesDone += pipeline.bytes;
            errors += pipeline.errors;
        }
        String state;
        if (stop.get()) {
            state = "stopped";
        } else {
            // whatever vanished and was not renamed is gone from the share: remove it from the index
            List<Long> all = new ArrayList<>();
            for (Catalog.DocumentRow d : known.values()) {
                if (present.contains(d.source())) continue;
                boolean renamed = index.catalog().document(d.id()).map(r -> !r.source().equals(d.source())).orElse(true);
                if (!renamed) all.add(d.id());
            }
            index.deleteDocuments(all);
            state = "done";
        }
        index.catalog().updateJob(job, state, files.size(), filesDone, bytesTotal, bytesDone, errors);
        Progress p = progress(job, state, files.size(), filesDone, bytesTotal, bytesDone, errors, start);
        progress.accept(p);
        return p;
    }

    /** The crawl's pipeline of batches, with what the stored ones did. */
    private static final class BatchPipeline implements AutoCloseable {
        private final DocumentIndex.BatchPipeline batches;
        private long pendingFiles;
        private long pendingBytes;
        long files;
        long bytes;
        long errors;

        BatchPipeline(DocumentIndex index, String collection, long job) {
            this.batches = index.pipeline(collection, job);
        }

        /** Starts embedding {@code batch}, then stores the batch before it; true if one was stored. */
        boolean submit(List<DocumentIndex.Source> batch, long batchBytes) throws SQLException, IOException {
            boolean stored = count(batches.submit(batch));
            pendingFiles = batch.size();
            pendingBytes = batchBytes;
            return stored;
        }

        /** Stores the batch still prepared, if there is one. */
        void drain() throws SQLException, IOException {
            count(batches.flush());
        }

        private boolean count(List<DocumentIndex.Outcome> stored) {
            if (stored.isEmpty()) return false;
            for (DocumentIndex.Outcome o : stored) if (!o.ok()) errors++;
            files += pendingFiles;
            bytes += pendingBytes;
            return true;
        }

        @Override
        public void close() {
            batches.close();
        }
    }

    private static Progress progress(long job, String state, long total, long done, long bytesTotal, long bytesDone,
                                     long errors, long startNanos) {
        double s = Math.max(1e-3, (System.nanoTime() - startNanos) / 1e9);
        double rate = done / s;
        double eta = rate > 0 ? (total - done) / rate : 0;
        return new Progress(job, state, total, done, bytesTotal, bytesDone, errors, rate, eta);
    }

    private static List<FileEntry> list(Path base) throws IOException {
        List<FileEntry> out = new ArrayList<>();
        // symbolic links are not followed: a link must not pull files from outside the share into the index
        Files.walkFileTree(base, EnumSet.noneOf(FileVisitOption.class), Integer.MAX_VALUE, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
                String n = dir.getFileName() == null ? "" : dir.getFileName().toString();
                return !dir.equals(base) && n.startsWith(".") ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                String n = file.getFileName().toString();
                if (attrs.isRegularFile() && !n.startsWith(".")) {
                    out.add(new FileEntry(file, file.toString(), attrs.size(), attrs.lastModifiedTime().toMillis()));
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException exc) {
                return FileVisitResult.CONTINUE; // unreadable entries are reported when read
            }
        });
        out.sort((a, b) -> a.source().compareTo(b.source()));
        return out;
    }
}
