package dev.enclave.server.panel;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** What the panel pages show, read as a newcomer would (server-rendered; the browser test drives the scripts). */
@QuarkusTest
class PanelPagesTest {

    @Test
    void sizesAreFileSizesNotFieldCounts() {
        String col = "sizes" + System.nanoTime();
        given().contentType(ContentType.JSON).body("{\"name\":\"" + col + "\"}").post("/rag/collections").then().statusCode(201);
        given().multiPart("file", "note.txt", "x".repeat(1234).getBytes(), "text/plain")
                .post("/rag/collections/" + col + "/documents").then().statusCode(201);
        String page = given().get("/documents").then().statusCode(200).extract().asString();
        Matcher m = Pattern.compile("note\\.txt</span></td><td>[^<]*</td><td>([^<]*)</td>").matcher(page);
        org.junit.jupiter.api.Assertions.assertTrue(m.find(), page);
        assertEquals("1.2 KiB", m.group(1));
    }

    @Test
    void modelsListsTheBundledModelWithItsSize() {
        given().get("/models").then().statusCode(200)
                .body(containsString("stories260K (bundled)"))
                .body(not(containsString("<td>7</td>")));
    }

    @Test
    void settingsHideSecretsOnly() {
        String page = given().get("/settings").then().statusCode(200).extract().asString();
        Matcher budget = Pattern.compile("enclave\\.scheduler\\.token-budget</code></td><td>([^<]*)<").matcher(page);
        org.junit.jupiter.api.Assertions.assertTrue(budget.find(), page);
        assertEquals("64", budget.group(1).strip(), "a token budget is not a secret");
        assertEquals("(hidden)", PanelRoutes.redact("enclave.auth.admin-password-file", "/etc/enclave/pw"));
        assertEquals("(hidden)", PanelRoutes.redact("quarkus.http.ssl.certificate.key-files", "/x"));
        assertEquals("(hidden)", PanelRoutes.redact("enclave.audit.key-file", "/x"));
        assertEquals("(hidden)", PanelRoutes.redact("enclave.api.token", "abc"));
        assertEquals("64", PanelRoutes.redact("enclave.scheduler.token-budget", "64"));
        assertEquals("/media", PanelRoutes.redact("enclave.models.import-roots", "/media"));
    }
}
