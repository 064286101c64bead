package dev.enclave.server.inference;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.enclave.server.model.ModelService;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

/**
 * A grounded conversation's follow-up reads its earlier turns from the prefix cache: the sources go with the newest
 * question (not into the system message, which would change the prompt's beginning every turn), and an earlier
 * grounded question sent back as plain text is given its sources again.
 */
@QuarkusTest
class GroundedFollowUpTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Inject
    ModelService models;

    @Test
    void aFollowUpReusesTheWholeEarlierTurn() throws Exception {
        String col = "followup-" + System.nanoTime();
        given().contentType(ContentType.JSON).body("{\"name\":\"" + col + "\"}").post("/rag/collections").then().statusCode(201);
        // two documents, one source per turn: each turn is given other sources
        given().multiPart("file", "pump.txt", ("The infusion pump alarm means the line is occluded. Check the clamp "
                        + "first, then the tubing, then call the biomedical engineer on duty.").getBytes(), "text/plain")
                .multiPart("file", "visits.txt", ("Visiting hours end at eight in the evening. Children visit with an "
                        + "adult; flowers are not allowed on the intensive care ward.").getBytes(), "text/plain")
                .post("/rag/collections/" + col + "/documents").then().statusCode(201);

        ObjectNode turn1 = JSON.createObjectNode().put("max_tokens", 12).put("temperature", 0);
        ArrayNode messages = turn1.putArray("messages");
        messages.addObject().put("role", "system").put("content", "You are the ward's assistant.");
        messages.addObject().put("role", "user").put("content", "What does the infusion pump alarm mean?");
        turn1.putObject("enclave").put("top_k", 1).putArray("collections").add(col);
        JsonNode a1 = JSON.readTree(given().contentType(ContentType.JSON).body(turn1.toString())
                .post("/v1/chat/completions").then().statusCode(200).extract().asString());
        int prompt1 = a1.at("/usage/prompt_tokens").asInt();
        assertTrue(a1.at("/enclave/citations").size() >= 1, a1.toString());

        ObjectNode turn2 = turn1.deepCopy();
        ArrayNode m2 = (ArrayNode) turn2.get("messages");
        m2.addObject().put("role", "assistant").put("content", a1.at("/choices/0/message/content").asText());
        m2.addObject().put("role", "user").put("content", "When do visiting hours end?");
        long cachedBefore = models.metrics().cachedPromptTokens();
        JsonNode a2 = JSON.readTree(given().contentType(ContentType.JSON).body(turn2.toString())
                .post("/v1/chat/completions").then().statusCode(200).extract().asString());
        long cached = models.metrics().cachedPromptTokens() - cachedBefore;
        int prompt2 = a2.at("/usage/prompt_tokens").asInt();
        System.out.printf("grounded follow-up: %d of %d prompt tokens cached; turn 1 had %d%n", cached, prompt2, prompt1);
        // the first turn, sources and all, came from the cache (less at most a block where its last token was
        // re-tokenized); only the new turn was computed. With the sources in the system message, every turn's
        // prompt differed from the first source on.
        assertTrue(cached >= prompt1 - 16, "cached " + cached + " of " + prompt2 + " prompt tokens; turn 1 had " + prompt1);
        assertTrue(a2.at("/enclave/citations/0/source").asText().equals("visits.txt"), a2.toString());
    }
}
