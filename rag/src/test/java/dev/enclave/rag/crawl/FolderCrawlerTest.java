package dev.enclave.rag.crawl;

import dev.enclave.rag.TestEmbedder;
import dev.enclave.rag.extract.TestDocuments;
import dev.enclave.rag.store.Catalog;
import dev.enclave.rag.store.DocumentIndex;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class FolderCrawlerTest {

    @TempDir
    Path tmp;

    @Test
    void incrementalCrawlNoticesChangesRenamesAndDeletions() throws Exception {
        Path share = Files.createDirectories(tmp.resolve("share"));
        Files.createDirectories(share.resolve("reports/2026"));
        Files.writeString(share.resolve("a.txt"), "Incident report: the lift on floor three stopped.");
        Files.writeString(share.resolve("reports/2026/b.md"), "# Audit\n\nThe pharmacy fridge was at 9 degrees.");
        Files.write(share.resolve("reports/c.pdf"), TestDocuments.pdf(List.of("Page one.", "Fire drill on page two.")));
        Files.write(share.resolve("broken.pdf"), new byte[] {'%', 'P', 'D', 'F', '-', '1', '.', '7', 0, 1, 2});
        Files.writeString(share.resolve(".hidden"), "not indexed");

        try (DocumentIndex index = DocumentIndex.open(tmp.resolve("index"), TestEmbedder.get())) {
            index.createCollection("share", "", List.of(), List.of());
            FolderCrawler crawler = new FolderCrawler(index, 1 << 20);
            List<FolderCrawler.Progress> seen = new ArrayList<>();
            FolderCrawler.Progress p = crawler.crawl("share", share, seen::add);
            assertEquals("done", p.state());
            assertEquals(4, p.filesTotal());
            assertEquals(4, p.filesDone());
            assertEquals(1, p.errors());
            assertFalse(seen.isEmpty());
            long col = index.collection("share").id();
            assertEquals(3, index.catalog().documents(col).size());
            assertTrue(index.catalog().errors(col).stream().anyMatch(e -> e.source().endsWith("broken.pdf")));

            // second crawl: nothing changed, nothing re-read
            long versionBefore = index.catalog().document(col, share.resolve("a.txt").toString()).orElseThrow().version();
            crawler.crawl("share", share, x -> { });
            assertEquals(versionBefore,
                    index.catalog().document(col, share.resolve("a.txt").toString()).orElseThrow().version());

            // change one, rename one, delete one
            Files.writeString(share.resolve("a.txt"), "Incident report: the lift was repaired on Monday.");
            Files.setLastModifiedTime(share.resolve("a.txt"), FileTime.fromMillis(System.currentTimeMillis() + 5000));
            long bId = index.catalog().document(col, share.resolve("reports/2026/b.md").toString()).orElseThrow().id();
            Files.move(share.resolve("reports/2026/b.md"), share.resolve("reports/b-renamed.md"));
            Files.delete(share.resolve("reports/c.pdf"));
            p = crawler.crawl("share", share, x -> { });
            assertEquals("done", p.state());

            List<Catalog.DocumentRow> docs = index.catalog().documents(col);
            assertEquals(2, docs.size(), docs.toString());
            Catalog.DocumentRow a = index.catalog().document(col, share.resolve("a.txt").toString()).orElseThrow();
            assertEquals(versionBefore + 1, a.version());
            Catalog.DocumentRow b = index.catalog().document(bId).orElseThrow();
            assertEquals(share.resolve("reports/b-renamed.md").toString(), b.source());
            assertEquals(1, b.version(), "a rename is not a re-ingestion");
            assertEquals(List.of(), index.verify());
        }
    }

    @Test
    void anInterruptedCrawlResumes() throws Exception {
        Path share = Files.createDirectories(tmp.resolve("share"));
        for (int i = 0; i < 40; i++) {
            Files.writeString(share.resolve("doc" + i + ".txt"), "Document number " + i + " about maintenance.");
        }
        try (DocumentIndex index = DocumentIndex.open(tmp.resolve("index"), TestEmbedder.get())) {
            index.createCollection("share", "", List.of(), List.of());
            long col = index.collection("share").id();
            // a job left "running" with half the files done, as after a crash
            long job = index.catalog().startJob(col, "crawl", share.toString());
            index.catalog().updateJob(job, "running", 40, 20, 0, 0, 0);
            FolderCrawler crawler = new FolderCrawler(index, 1 << 20);
            List<FolderCrawler.Progress> resumed = crawler.resumeInterrupted(x -> { });
            assertEquals(1, resumed.size());
            assertEquals("done", resumed.getFirst().state());
            assertEquals("done", index.catalog().job(job).orElseThrow().state());
            assertEquals(40, index.catalog().documents(col).size());
            assertEquals(List.of(), index.verify());
        }
    }

    @Test
    void manyBatchesAreAllStoredAndProgressOnlyGrows() throws Exception {
        // 100 files are four batches, each prepared before the one before it is stored
        Path share = Files.createDirectories(tmp.resolve("share"));
        for (int i = 0; i < 100; i++) {
            String name = String.format("note%03d.txt", i);
            if (i == 50) {
                Files.write(share.resolve("note050.pdf"), new byte[] {'%', 'P', 'D', 'F', '-', '1', '.', '7', 0, 1});
            } else {
                Files.writeString(share.resolve(name), "Shift note " + i + ": the autoclave cycle was logged.");
            }
        }
        try (DocumentIndex index = DocumentIndex.open(tmp.resolve("index"), TestEmbedder.get())) {
            index.createCollection("share", "", List.of(), List.of());
            long col = index.collection("share").id();
            List<FolderCrawler.Progress> seen = new ArrayList<>();
            FolderCrawler.Progress p = new FolderCrawler(index, 1 << 20).crawl("share", share, seen::add);
            assertEquals("done", p.state());
            assertEquals(100, p.filesDone());
            assertEquals(1, p.errors());
            assertEquals(99, index.catalog().documents(col).size());
            assertTrue(seen.size() >= 3, "progress after each stored batch: " + seen.size());
            for (int i = 1; i < seen.size(); i++) {
                assertTrue(seen.get(i).filesDone() >= seen.get(i - 1).filesDone(), seen.toString());
                assertTrue(seen.get(i).bytesDone() >= seen.get(i - 1).bytesDone(), seen.toString());
            }
            for (int i = 0; i + 1 < seen.size(); i++) assertTrue(seen.get(i).filesDone() < 100, "running while batches remain");
            assertEquals(List.of(), index.verify());
        }
    }
}
