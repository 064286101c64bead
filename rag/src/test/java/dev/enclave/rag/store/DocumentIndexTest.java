package dev.enclave.rag.store;

import dev.enclave.rag.TestEmbedder;
import dev.enclave.rag.extract.TestDocuments;
import dev.enclave.rag.retrieve.HybridRetriever;
import dev.enclave.rag.retrieve.SearchHit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class DocumentIndexTest {

    @TempDir
    Path dir;

    static DocumentIndex.Source text(String name, String body) {
        return new DocumentIndex.Source(name, body.getBytes(StandardCharsets.UTF_8), 1, "{}");
    }

    @Test
    void ingestSearchAndCiteThePage() throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("ward", "", List.of(), List.of());
            byte[] pdf = TestDocuments.pdf(List.of(
                    "General introduction to the ward and its staff rota.",
                    "The insulin pump must be recalibrated every thirty days by a biomedical technician.",
                    "Visitors are welcome between ten and eight."));
            var outcome = index.ingest("ward", new DocumentIndex.Source("pumps.pdf", pdf, 1, "{}"));
            assertTrue(outcome.ok(), outcome.error());
            index.ingest("ward", text("kitchen.txt", "The kitchen serves lunch at noon and dinner at six."));
            assertEquals(List.of(), index.verify());

            HybridRetriever r = new HybridRetriever(index);
            for (HybridRetriever.Mode mode : HybridRetriever.Mode.values()) {
                List<SearchHit> hits = r.search(Principal.SYSTEM,
                        new HybridRetriever.Query("how often is the insulin pump calibrated?", List.of("ward"), 3, mode));
                assertFalse(hits.isEmpty(), mode.name());
                SearchHit top = hits.getFirst();
                assertEquals("pumps.pdf", top.source(), mode.name());
                assertEquals(2, top.pageStart(), mode.name() + ": " + top);
                assertTrue(top.text().contains("insulin pump"));
            }
        }
    }

    @Test
    void batchesPreparedAheadAreStoredInOrderAndACancelledOneLeavesNothing() throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("c", "", List.of(), List.of());
            DocumentIndex.PreparedBatch first = index.prepare("c", List.of(
                    text("a.txt", "Gloves are changed between patients."),
                    new DocumentIndex.Source("broken.pdf", "%PDF-1.7 not really".getBytes(StandardCharsets.UTF_8), 1, "{}")),
                    null);
            DocumentIndex.PreparedBatch second = index.prepare("c", List.of(
                    text("b.txt", "Masks are worn in the isolation rooms.")), null);
            // nothing is stored before store(): a crash now loses no indexed document and leaves none half-written
            assertEquals(0, index.catalog().count("documents"));
            List<DocumentIndex.Outcome> one = index.store(first);
            assertTrue(one.get(0).ok());
            assertFalse(one.get(1).ok(), "the broken file is reported, the rest goes on");
            assertTrue(index.store(second).getFirst().ok());
            assertThrows(IllegalStateException.class, () -> index.store(second));

            DocumentIndex.PreparedBatch dropped = index.prepare("c", List.of(
                    text("c.txt", "Aprons are single use.")), null);
            dropped.cancel();
            assertEquals(2, index.catalog().count("documents"));
            assertEquals(List.of(), index.verify());
            List<SearchHit> hits = new HybridRetriever(index).search(Principal.SYSTEM,
                    new HybridRetriever.Query("isolation masks", List.of("c"), 1, HybridRetriever.Mode.HYBRID));
            assertEquals("b.txt", hits.getFirst().source());
        }
    }

    /** A deleted document's id is never given to another (its citations would then name that one), across reopening. */
    @Test
    void documentIdsAreNeverReusedAndTheCatalogIsTheOwnersAlone() throws Exception {
        long deleted;
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("c", "", List.of(), List.of());
            index.ingest("c", text("a.txt", "Gloves are changed between patients."));
            deleted = index.ingest("c", text("b.txt", "Masks are worn in the isolation rooms.")).documentId();
            index.deleteDocument(deleted);
            long next = index.ingest("c", text("c.txt", "Aprons are single use.")).documentId();
            assertTrue(next > deleted, next + " after deleting " + deleted);
            index.deleteDocument(next);
            deleted = next;
        }
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            long next = index.ingest("c", text("d.txt", "Hands are washed for twenty seconds.")).documentId();
            assertTrue(next > deleted, next + " after deleting " + deleted + " and reopening");
        }
        try (var files = java.nio.file.Files.list(dir)) {
            for (Path f : files.filter(f -> f.getFileName().toString().startsWith("catalog.sqlite")).toList()) {
                assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(java.nio.file.Files.getPosixFilePermissions(f)), f.toString());
            }
        }
    }

    @Test
    void unchangedContentIsSkippedAndChangedContentReplaced() throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("c", "", List.of(), List.of());
            var first = index.ingest("c", text("a.txt", "Alpha version of the text about sterile gloves."));
            var again = index.ingest("c", text("a.txt", "Alpha version of the text about sterile gloves."));
            assertTrue(again.unchanged());
            assertEquals(first.documentId(), again.documentId());
            index.ingest("c", text("a.txt", "Beta version talks about surgical masks instead."));
            assertEquals(List.of(), index.verify());
            assertEquals(1, index.catalog().documents(index.collection("c").id()).size());
            assertEquals(2, index.catalog().document(first.documentId()).orElseThrow().version());
            List<SearchHit> hits = new HybridRetriever(index).search(Principal.SYSTEM,
                    new HybridRetriever.Query("sterile gloves", List.of("c"), 5, HybridRetriever.Mode.BM25));
            assertTrue(hits.isEmpty(), "the old version must be gone from Lucene: " + hits);
        }
    }

    @Test
    void deletionRemovesFromBothStores() throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("c", "", List.of(), List.of());
            long id = index.ingest("c", text("gone.txt", "Cryogenic freezer alarm procedure.")).documentId();
            index.ingest("c", text("stay.txt", "Fire exit plan for the east wing."));
            index.deleteDocument(id);
            assertTrue(index.catalog().document(id).isEmpty());
            assertEquals(0, index.lucene().countChunks(id));
            assertEquals(List.of(), index.verify());
            List<SearchHit> hits = new HybridRetriever(index).search(Principal.SYSTEM,
                    new HybridRetriever.Query("cryogenic freezer alarm", List.of("c"), 10, HybridRetriever.Mode.HYBRID));
            assertTrue(hits.stream().noneMatch(h -> h.documentId() == id));
        }
        // and it stays gone after reopening
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            assertEquals(List.of(), index.verify());
            assertEquals(1, index.catalog().count("documents"));
        }
    }

    @Test
    void accessRulesAreEnforced() throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("hr", "", List.of("auditor"), List.of("alice"));
            index.createCollection("public", "", List.of(), List.of());
            index.ingest("hr", text("salaries.txt", "Salary scale for nurses and the overtime bonus policy."));
            index.ingest("public", text("menu.txt", "Canteen menu: soup, bread and salary-free apples."));
            HybridRetriever r = new HybridRetriever(index);
            Principal bob = new Principal("bob", Set.of("technician"));
            Principal alice = new Principal("alice", Set.of("technician"));
            Principal carol = new Principal("carol", Set.of("auditor"));
            var everywhere = new HybridRetriever.Query("salary overtime bonus", List.of(), 10, HybridRetriever.Mode.HYBRID);
            assertTrue(r.search(bob, everywhere).stream().noneMatch(h -> h.collection().equals("hr")));
            assertTrue(r.search(alice, everywhere).stream().anyMatch(h -> h.collection().equals("hr")));
            assertTrue(r.search(carol, everywhere).stream().anyMatch(h -> h.collection().equals("hr")));
            var denied = assertThrows(HybridRetriever.AccessDeniedException.class, () -> r.search(bob,
                    new HybridRetriever.Query("salary", List.of("hr"), 10, HybridRetriever.Mode.HYBRID)));
            var unknown = assertThrows(HybridRetriever.AccessDeniedException.class, () -> r.search(bob,
                    new HybridRetriever.Query("salary", List.of("hx"), 10, HybridRetriever.Mode.HYBRID)));
            // the caller cannot tell an unreadable collection from a missing one; the server can
            assertEquals(denied.getMessage().replace("hr", "hx"), unknown.getMessage());
            assertTrue(denied.exists);
            assertFalse(unknown.exists);
        }
    }

    @Test
    void aBadDocumentIsRecordedAndTheRestIngested() throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("c", "", List.of(), List.of());
            byte[] junk = new byte[100];
            var out = index.ingest("c", List.of(
                    text("good.txt", "A perfectly fine document about hand hygiene."),
                    new DocumentIndex.Source("junk.bin", junk, 1, "{}"),
                    new DocumentIndex.Source("locked.pdf", TestDocuments.pdf(List.of("x"), "o", "u"), 1, "{}")), null);
            assertTrue(out.get(0).ok() || out.stream().anyMatch(o -> o.source().equals("good.txt") && o.ok()));
            assertEquals(2, out.stream().filter(o -> !o.ok()).count());
            var errors = index.catalog().errors(index.collection("c").id());
            assertEquals(2, errors.size());
            assertTrue(errors.stream().anyMatch(e -> e.source().equals("locked.pdf") && e.reason().contains("encrypted")));
            assertEquals(List.of(), index.verify());
        }
    }

    @Test
    void aChangedEmbedderTriggersReembedding() throws Exception {
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            index.createCollection("c", "", List.of(), List.of());
            index.ingest("c", text("a.txt", "Blood bank temperature log."));
            index.catalog().setMeta(DocumentIndex.META_EMBEDDER, "some-older-model@1");
            index.catalog().transaction(c -> {
                try (var s = c.createStatement()) {
                    s.executeUpdate("UPDATE chunks SET embedding = zeroblob(1536)");
                }
                return null;
            });
        }
        try (DocumentIndex index = DocumentIndex.open(dir, TestEmbedder.get())) {
            var chunk = index.catalog().chunksOf(1).getFirst();
            double norm = 0;
            for (float x : chunk.embedding()) norm += x * x;
            assertEquals(1.0, norm, 1e-3, "vectors recomputed by the current embedder");
            assertTrue(index.catalog().meta(DocumentIndex.META_EMBEDDER).orElseThrow().startsWith("all-minilm"));
            assertEquals(List.of(), index.verify());
        }
    }

    @Test
    void newerSchemaIsRefused() throws Exception {
        try (Catalog c = new Catalog(dir.resolve("x.sqlite"))) {
            c.transaction(conn -> {
                try (var s = conn.createStatement()) {
                    s.execute("PRAGMA user_version = 99");
                }
                return null;
            });
        }
        var e = assertThrows(java.sql.SQLException.class, () -> new Catalog(dir.resolve("x.sqlite")));
        assertTrue(e.getMessage().contains("newer"));
        assertTrue(Files.exists(dir.resolve("x.sqlite")));
    }
}
