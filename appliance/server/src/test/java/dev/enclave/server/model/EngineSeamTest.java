package dev.enclave.server.model;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The engine seam: with {@code enclave.backend} naming a whole-model engine, every request goes through that engine
 * instead of the scheduler, and the API reports where the model runs. The engine here samples greedily on its own,
 * so its text is the scheduler's greedy text for the same prompt.
 */
@QuarkusTest
@TestProfile(EngineSeamTest.SelfSampling.class)
class EngineSeamTest {

    public static class SelfSampling implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("enclave.backend", "self-sampling", "enclave.data-dir", "target/test-engine-" + ProcessHandle.current().pid());
        }
    }

    @Test
    void requestsGoThroughTheChosenEngine() {
        given().get("/v1/models").then().statusCode(200)
                .body("data[0].backend", equalTo("self-sampling"))
                .body("data[0].layers.self-sampling", equalTo(5));
        given().contentType(ContentType.JSON)
                .body("{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":20,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200)
                .body("choices[0].text", equalTo(", there was a little girl named Lily. She loved to play outsid"))
                .body("usage.completion_tokens", equalTo(20));
        String stream = given().contentType(ContentType.JSON)
                .body("{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":5,\"temperature\":0,\"stream\":true}")
                .post("/v1/completions").then().statusCode(200).extract().asString();
        assertTrue(stream.contains("data: [DONE]") && stream.contains("\"text\":\" there\""), stream); // one event per token
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("enclave_tokens_generated_total") && l.endsWith(" 25.0")), metrics);
    }
}
