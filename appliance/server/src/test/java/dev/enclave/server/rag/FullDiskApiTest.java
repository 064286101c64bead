package dev.enclave.server.rag;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The full-text index on a real 4 MiB disk (tmpfs, mounted as root; skipped where mounting is refused): when it
 * fills, the uploader is told so (507), readiness goes down, and both come back by themselves once space is freed.
 */
@QuarkusTest
@TestProfile(FullDiskApiTest.SmallDisk.class)
class FullDiskApiTest {

    static final Path DATA = Path.of("target", "test-full-disk-" + ProcessHandle.current().pid()).toAbsolutePath();
    static final Path DISK = DATA.resolve("rag").resolve("lucene");

    public static class SmallDisk implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            try {
                Files.createDirectories(DISK);
                if (!mounted()) run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", DISK.toString());
            } catch (Exception e) {
                // not allowed here: the test is skipped
            }
            return Map.of("enclave.data-dir", DATA.toString());
        }
    }

    static boolean mounted() throws IOException {
        return Files.readString(Path.of("/proc/mounts")).contains(" " + DISK + " tmpfs ");
    }

    static boolean run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor() == 0;
    }

    @AfterAll
    static void unmount() throws Exception {
        if (mounted()) run("umount", "-l", DISK.toString());
    }

    private static int upload(String col, String name, String text) {
        return given().multiPart("file", name, text.getBytes(), "text/plain").post("/rag/collections/" + col + "/documents").statusCode();
    }

    @Test
    void aFullDiskIsReportedAndRecoveredWithoutARestart() throws Exception {
        Assumptions.assumeTrue(mounted(), "mounting a small tmpfs needs root and a mount namespace that allows it");
        given().contentType(ContentType.JSON).body("{\"name\":\"disk\"}").post("/rag/collections").then().statusCode(201);
        org.junit.jupiter.api.Assertions.assertEquals(201, upload("disk", "kept.txt", "Gloves are changed between patients."));
        Path filler = DISK.resolve("filler");
        try (OutputStream out = Files.newOutputStream(filler)) {
            byte[] block = new byte[16 << 10];
            for (;;) out.write(block);
        } catch (IOException full) {
            // the disk is full now
        }
        int status = 0;
        String body = "";
        for (int i = 0; i < 20 && status != 507; i++) {
            var r = given().multiPart("file", "big" + i + ".txt", ("Sterile field number " + i + ". ").repeat(4000).getBytes(), "text/plain")
                    .post("/rag/collections/disk/documents");
            status = r.statusCode();
            body = r.asString();
        }
        org.junit.jupiter.api.Assertions.assertEquals(507, status, body);
        org.junit.jupiter.api.Assertions.assertTrue(body.contains("disk is full"), body);
        given().get("/q/health/ready").then().statusCode(503).body(containsString("document-index"));

        Files.delete(filler);
        given().get("/q/health/ready").then().statusCode(200);
        org.junit.jupiter.api.Assertions.assertEquals(201, upload("disk", "after.txt", "Masks are worn in the isolation rooms."));
        given().contentType(ContentType.JSON).body("{\"query\":\"gloves patients\",\"collections\":[\"disk\"],\"mode\":\"bm25\"}")
                .post("/rag/search").then().statusCode(200).body(containsString("kept.txt"));
    }
}
