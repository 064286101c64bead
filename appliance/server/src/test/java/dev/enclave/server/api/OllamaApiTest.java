package dev.enclave.server.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.notNullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import org.junit.jupiter.api.Test;

/** Ollama's API shapes over real HTTP: NDJSON streaming, non-streamed answers, tags, show, version, errors. */
@QuarkusTest
class OllamaApiTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void versionTagsAndShow() {
        given().get("/api/version").then().statusCode(200).body("version", notNullValue());
        given().get("/api/tags").then().statusCode(200)
                .body("models[0].name", equalTo("stories260K:latest"))
                .body("models[0].details.format", equalTo("gguf"))
                .body("models[0].details.family", equalTo("llama"));
        given().contentType(ContentType.JSON).body("{\"model\":\"stories260K\"}").post("/api/show").then().statusCode(200)
                .body("model_info.'general.architecture'", equalTo("llama"))
                .body("details.quantization_level", equalTo("F32"));
        given().contentType(ContentType.JSON).body("{\"model\":\"llama3:8b\"}").post("/api/show").then().statusCode(404)
                .body("error", notNullValue());
    }

    @Test
    void generateStreamsNdjsonAndMatchesTheNonStreamedAnswer() throws Exception {
        String req = "{\"model\":\"stories260K:latest\",\"prompt\":\"Once upon a time\",\"options\":{\"temperature\":0,\"num_predict\":20,\"repeat_penalty\":1.0,\"top_k\":0,\"top_p\":1.0}";
        String streamed = given().contentType(ContentType.JSON).body(req + "}").post("/api/generate").then().statusCode(200)
                .contentType(equalTo("application/x-ndjson")).extract().asString();
        StringBuilder text = new StringBuilder();
        JsonNode last = null;
        for (String line : streamed.split("\n")) {
            last = JSON.readTree(line);
            text.append(last.path("response").asText());
        }
        assertTrue(last.get("done").asBoolean());
        assertEquals(20, last.get("eval_count").asInt());
        assertEquals(5, last.get("prompt_eval_count").asInt());
        assertEquals(OpenAiApiTest.GREEDY_16, text.toString());
        given().contentType(ContentType.JSON).body(req + ",\"stream\":false}").post("/api/generate").then().statusCode(200)
                .body("response", equalTo(OpenAiApiTest.GREEDY_16)).body("done", equalTo(true)).body("done_reason", equalTo("length"));
    }

    @Test
    void embeddingsOnBothApis() throws Exception {
        JsonNode o = JSON.readTree(given().contentType(ContentType.JSON)
                .body("{\"model\":\"stories260K\",\"input\":[\"Lily played in the park.\",\"Lily played in the park!\",\"The cat sat.\"]}")
                .post("/v1/embeddings").then().statusCode(200).extract().asString());
        JsonNode d = o.get("data");
        assertEquals(3, d.size());
        double same = cos(d.get(0).get("embedding"), d.get(1).get("embedding"));
        double other = cos(d.get(0).get("embedding"), d.get(2).get("embedding"));
        assertEquals(1.0, cos(d.get(0).get("embedding"), d.get(0).get("embedding")), 1e-5);
        assertTrue(same > other, "near-identical sentences should be closer: " + same + " vs " + other);
        JsonNode e = JSON.readTree(given().contentType(ContentType.JSON).body("{\"model\":\"stories260K\",\"input\":\"Lily played in the park.\"}")
                .post("/api/embed").then().statusCode(200).extract().asString());
        assertEquals(1.0, cos(e.get("embeddings").get(0), d.get(0).get("embedding")), 1e-5);
        given().contentType(ContentType.JSON).body("{\"input\":42}").post("/v1/embeddings").then().statusCode(400);
    }

    static double cos(JsonNode a, JsonNode b) {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.size(); i++) {
            dot += a.get(i).asDouble() * b.get(i).asDouble();
            na += a.get(i).asDouble() * a.get(i).asDouble();
            nb += b.get(i).asDouble() * b.get(i).asDouble();
        }
        return dot / Math.sqrt(na * nb);
    }

    @Test
    void chatStreamsMessages() throws Exception {
        String streamed = given().contentType(ContentType.JSON)
                .body("{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],"
                        + "\"options\":{\"temperature\":0,\"num_predict\":20,\"repeat_penalty\":1.0}}")
                .post("/api/chat").then().statusCode(200).extract().asString();
        StringBuilder text = new StringBuilder();
        for (String line : streamed.split("\n")) {
            JsonNode n = JSON.readTree(line);
            assertEquals("assistant", n.path("message").path("role").asText());
            text.append(n.path("message").path("content").asText());
        }
        assertEquals(OpenAiApiTest.GREEDY_16, text.toString());
        given().contentType(ContentType.JSON).body("{\"model\":\"nope\",\"messages\":[]}").post("/api/chat").then().statusCode(404);
        given().contentType(ContentType.JSON).body("{not json").post("/api/chat").then().statusCode(400).body("error", notNullValue());
    }
}
