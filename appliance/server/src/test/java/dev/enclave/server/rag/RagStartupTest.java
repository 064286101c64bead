package dev.enclave.server.rag;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.rag.store.Catalog;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * What a kill -9 leaves for the next start: plaintext upload bodies are deleted at once, and an interrupted crawl
 * resumes by itself, before anyone uses the document API.
 */
@QuarkusTest
@TestProfile(RagStartupTest.AfterACrash.class)
class RagStartupTest {

    static final Path DATA = Path.of("target", "test-rag-startup-" + ProcessHandle.current().pid()).toAbsolutePath();

    /** A data directory as a killed server leaves it: an upload half-received, a crawl marked running. */
    public static class AfterACrash implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            // asked more than once (and from more than one class loader): prepared once
            if (Files.exists(DATA.resolve("rag").resolve("catalog.sqlite"))) return Map.of("enclave.data-dir", DATA.toString());
            try {
                Files.createDirectories(DATA.resolve("uploads"));
                Files.writeString(DATA.resolve("uploads").resolve("stale-upload"), "patient record, plaintext");
                Path share = Files.createTempDirectory("share-after-crash");
                for (int i = 0; i < 3; i++) Files.writeString(share.resolve("n" + i + ".txt"), "Ward note number " + i + " about sterile gloves.");
                // the catalog alone (the embedder's native library belongs to the application's class loader)
                try (Catalog catalog = new Catalog(DATA.resolve("rag").resolve("catalog.sqlite"))) {
                    var col = catalog.createCollection("share", "", List.of(), List.of());
                    catalog.startJob(col.id(), "crawl", share.toRealPath().toString()); // then the process died
                }
                return Map.of("enclave.data-dir", DATA.toString());
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @Inject
    RagService rag;

    @Test
    void leftoversAreCleanedAndTheCrawlResumes() throws Exception {
        assertFalse(Files.exists(DATA.resolve("uploads").resolve("stale-upload")), "upload bodies deleted at start");
        for (int i = 0; i < 300 && !rag.isOpen(); i++) Thread.sleep(100);
        assertTrue(rag.isOpen(), "the index opened at start, no request needed");
        long col = rag.index().collection("share").id();
        String state = "";
        for (int i = 0; i < 300; i++) {
            state = rag.index().catalog().jobs(col).getFirst().state();
            if (state.equals("done")) break;
            Thread.sleep(100);
        }
        assertEquals("done", state);
        assertEquals(3, rag.index().catalog().documents(col).size());
    }
}
