package dev.enclave.server.security;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.server.audit.AuditLog;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Writing to a collection needs reading it, and a collection or document the caller cannot read answers exactly as
 * one that does not exist (no name enumeration); each denial is audited. Crawls read only below the configured
 * roots, never the appliance's data directory.
 */
@QuarkusTest
@TestProfile(AuthOnProfile.class)
class RagAccessTest {

    @Inject
    SecurityService security;

    @BeforeEach
    void admin() {
        Admin.ensure();
    }

    private static Response as(String key, String method, String path, String json) {
        var r = given().header("Authorization", "Bearer " + key);
        if (json != null) r = r.contentType(ContentType.JSON).body(json);
        return r.request(method, path);
    }

    @Test
    void aCollectionOneCannotReadCannotBeWrittenNorTellsItExists() throws Exception {
        String admin = Admin.login("admin", Admin.PASSWORD);
        String adminKey = SecurityTest.newKey(admin, "admin");
        String tech = SecurityTest.newUser(admin, "technician");
        String techKey = SecurityTest.newKey(admin, tech);
        String secret = "secret" + System.nanoTime();
        as(adminKey, "POST", "/rag/collections", "{\"name\":\"" + secret + "\",\"read_roles\":[\"admin\"]}").then().statusCode(201);
        Response up = given().header("Authorization", "Bearer " + adminKey)
                .multiPart("file", "salaries.txt", "The director earns more than the nurses.".getBytes(), "text/plain")
                .post("/rag/collections/" + secret + "/documents");
        up.then().statusCode(201);
        long doc = up.jsonPath().getLong("data[0].id");
        long before = security.auditLog().list(null, null, 1, 0).get(0).seq();

        String missing = "missing" + System.nanoTime();
        // every answer about the unreadable collection equals the answer about a missing one, name aside
        for (String[] call : new String[][] {{"GET", "/rag/collections/%s/documents", null}, {"GET", "/rag/collections/%s/crawl", null},
                {"DELETE", "/rag/collections/%s/crawl", null}, {"DELETE", "/rag/collections/%s", null},
                {"POST", "/rag/collections/%s/crawl", "{\"path\":\"/tmp\"}"}}) {
            Response denied = as(techKey, call[0], call[1].formatted(secret), call[2]);
            Response unknown = as(techKey, call[0], call[1].formatted(missing), call[2]);
            assertEquals(404, denied.statusCode(), call[0] + " " + call[1] + ": " + denied.asString());
            assertEquals(unknown.statusCode(), denied.statusCode());
            assertEquals(unknown.asString().replace(missing, "X"), denied.asString().replace(secret, "X"), call[1]);
        }
        Response upload = given().header("Authorization", "Bearer " + techKey)
                .multiPart("file", "salaries.txt", "The nurses earn more.".getBytes(), "text/plain")
                .post("/rag/collections/" + secret + "/documents");
        assertEquals(404, upload.statusCode(), "no overwrite, and no 'unchanged' telling the file is there");
        // the document: delete and re-index read as for an id that was never used
        long never = doc + 1_000_000;
        for (String[] call : new String[][] {{"DELETE", "/rag/documents/%d"}, {"POST", "/rag/documents/%d/reindex"}}) {
            Response denied = as(techKey, call[0], call[1].formatted(doc), null);
            Response unknown = as(techKey, call[0], call[1].formatted(never), null);
            assertEquals(404, denied.statusCode(), denied.asString());
            assertEquals(unknown.asString().replace(Long.toString(never), "X"), denied.asString().replace(Long.toString(doc), "X"));
        }
        // search and grounded chat naming it
        Response s1 = as(techKey, "POST", "/rag/search", "{\"query\":\"director\",\"collections\":[\"" + secret + "\"]}");
        Response s2 = as(techKey, "POST", "/rag/search", "{\"query\":\"director\",\"collections\":[\"" + missing + "\"]}");
        assertEquals(s2.statusCode(), s1.statusCode());
        assertEquals(s2.asString().replace(missing, "X"), s1.asString().replace(secret, "X"));
        Response g1 = as(techKey, "POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"director?\"}],"
                + "\"max_tokens\":2,\"enclave\":{\"collections\":[\"" + secret + "\"]}}");
        assertEquals(400, g1.statusCode(), g1.asString());

        // the document is intact and still the admin's
        as(adminKey, "GET", "/rag/collections/" + secret + "/documents", null).then().statusCode(200);
        assertEquals(1, as(adminKey, "GET", "/rag/collections/" + secret + "/documents", null).jsonPath().getList("data").size());

        List<AuditLog.Entry> after = security.auditLog().list(tech, "access.denied", 100, 0).stream()
                .filter(e -> e.seq() > before).toList();
        assertTrue(after.size() >= 9, "each denial audited: " + after);
        assertTrue(after.stream().anyMatch(e -> e.target().equals("collection/" + secret)));
        assertTrue(after.stream().anyMatch(e -> e.target().equals("document/" + doc)));
        assertTrue(after.stream().noneMatch(e -> e.target().contains(missing)), "a missing name is not a denial");
    }

    @Test
    void crawlsReadOnlyBelowTheConfiguredRootsAndNeverTheDataDirectory() throws Exception {
        String admin = Admin.login("admin", Admin.PASSWORD);
        String adminKey = SecurityTest.newKey(admin, "admin");
        String col = "share" + System.nanoTime();
        as(adminKey, "POST", "/rag/collections", "{\"name\":\"" + col + "\"}").then().statusCode(201);
        Path data = Path.of(AuthOnProfile.DATA_DIR).toAbsolutePath();
        Path inTmp = Files.createTempDirectory("crawl-link");
        Path link = Files.createSymbolicLink(inTmp.resolve("data"), data);
        for (String path : List.of(data.toString(), data.resolve("tls").toString(), "/etc", "/proc", link.toString(),
                inTmp.resolve("../../etc").toString(), data.getParent().toString())) {
            Response r = as(adminKey, "POST", "/rag/collections/" + col + "/crawl", "{\"path\":\"" + path + "\"}");
            assertEquals(400, r.statusCode(), path + ": " + r.asString());
        }
        assertTrue(security.auditLog().list("admin", "crawl.refused", 10, 0).size() >= 7);
        Files.writeString(inTmp.resolve("ok.txt"), "A note inside an allowed folder.");
        as(adminKey, "POST", "/rag/collections/" + col + "/crawl", "{\"path\":\"" + inTmp + "\"}").then().statusCode(202);
    }
}
