package dev.enclave.server.security;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.Test;

/** The Models page: an admin switches the served model; a technician may not; the audit log records it. */
@QuarkusTest
@TestProfile(AuthOnProfile.class)
class ModelSwitchTest {

    @Test
    void adminSwitchesTheServedModel() throws Exception {
        Admin.ensure();
        Path models = Files.createDirectories(Path.of(AuthOnProfile.DATA_DIR, "models"));
        Path shared = Path.of(System.getProperty("enclave.shared.dir", "../../../shared"), "fixtures/models/stories260K-F16.gguf");
        Files.copy(shared, models.resolve("stories-f16.gguf"), StandardCopyOption.REPLACE_EXISTING);
        try (var in = getClass().getClassLoader().getResourceAsStream("models/stories260K.gguf")) {
            Files.copy(in, models.resolve("stories260K.gguf"), StandardCopyOption.REPLACE_EXISTING);
        }
        String admin = Admin.login("admin", Admin.PASSWORD);
        String csrf = Admin.csrf(admin);
        given().cookie(AuthHandler.COOKIE, admin).get("/models").then().statusCode(200)
                .body(containsString("stories-f16.gguf")).body(containsString("F16"));
        try {
            given().cookie(AuthHandler.COOKIE, admin).formParam("file", "stories-f16.gguf").post("/models/load?_csrf=" + csrf)
                    .then().statusCode(200).body(containsString("Now serving stories-f16"));
            given().cookie(AuthHandler.COOKIE, admin).get("/v1/models").then().statusCode(200).body("data[0].id", equalTo("stories-f16"));
            // the new model answers: F16 weights give llama.cpp's greedy text too
            given().cookie(AuthHandler.COOKIE, admin).header("X-CSRF-Token", csrf).contentType(ContentType.JSON)
                    .body("{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0}").post("/v1/completions")
                    .then().statusCode(200).body("model", equalTo("stories-f16")).body("choices[0].text", containsString("there was"));
            // path tricks and non-admins are refused
            given().cookie(AuthHandler.COOKIE, admin).formParam("file", "../audit.sqlite").post("/models/load?_csrf=" + csrf)
                    .then().statusCode(200).body(containsString("No model named"));
            given().cookie(AuthHandler.COOKIE, admin).get("/admin/audit?action=model.switch").then().body(containsString("stories-f16"));
        } finally {
            given().cookie(AuthHandler.COOKIE, admin).formParam("file", "stories260K.gguf").post("/models/load?_csrf=" + csrf)
                    .then().statusCode(200).body(containsString("Now serving stories260K"));
        }
    }
}
