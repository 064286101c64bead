package dev.enclave.server.inference;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * question (with the sources in the system message, every turn's prompt differed from the first source on, and a
 * follow-up recomputed the whole conversation).
 */
@QuarkusTest
class GroundedFollowUpTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Inject
    ModelService models;

    private JsonNode ask(ObjectNode request) throws Exception {
        return JSON.readTree(given().contentType(ContentType.JSON).body(request.toString())
                .post("/v1/chat/completions").then().statusCode(200).extract().asString());
    }

    @Test
    void aFollowUpReusesTheEarlierTurns() throws Exception {
        String col = "followup-" + System.nanoTime();
        given().contentType(ContentType.JSON).body("{\"name\":\"" + col + "\"}").post("/rag/collections").then().statusCode(201);
        // two documents, one source per turn: each turn is given other sources
        given().multiPart("file", "pump.txt", ("The infusion pump alarm means the line is occluded. Check the clamp "
                        + "first, then the tubing, then call the biomedical engineer on duty.").getBytes(), "text/plain")
                .multiPart("file", "visits.txt", ("Visiting hours end at eight in the evening. Children visit with an "
                        + "adult; flowers are not allowed on the intensive care ward.").getBytes(), "text/plain")
                .post("/rag/collections/" + col + "/documents").then().statusCode(201);

        ObjectNode request = JSON.createObjectNode().put("max_tokens", 32).put("temperature", 0);
        ArrayNode messages = request.putArray("messages");
        messages.addObject().put("role", "system").put("content", "You are the ward's assistant. You answer nurses, "
                + "doctors and technicians on the night shift, briefly and plainly, and you say when you do not know.");
        request.putObject("enclave").put("top_k", 1).putArray("collections").add(col);
        String[] questions = {"What does the infusion pump alarm mean?", "When do visiting hours end?", "Who may visit children?"};
        long cached = 0;
        int prompt = 0;
        for (int turn = 0; turn < 3; turn++) {
            messages.addObject().put("role", "user").put("content", questions[turn]);
            long before = models.metrics().cachedPromptTokens();
            JsonNode answer = ask(request);
            cached = models.metrics().cachedPromptTokens() - before;
            prompt = answer.at("/usage/prompt_tokens").asInt();
            assertEquals(turn == 1 ? "visits.txt" : turn == 0 ? "pump.txt" : "visits.txt",
                    answer.at("/enclave/citations/0/source").asText(), answer.toString());
            messages.addObject().put("role", "assistant").put("content", answer.at("/choices/0/message/content").asText());
        }
        // what the third turn shares with the second: system message, first question and answer, second question
        ArrayNode shared = JSON.createArrayNode();
        for (int i = 0; i < 4; i++) shared.add(messages.get(i));
        var m = models.current();
        int sharedTokens = ChatPrompt.tokens(shared, null, m.chatTemplate(), m.tokenizer(), m.answers()).length;
        System.out.printf("grounded follow-up: %d of %d prompt tokens cached; %d tokens of conversation before the "
                + "previous answer%n", cached, prompt, sharedTokens);
        assertTrue(cached >= sharedTokens - 16, "cached " + cached + " of " + prompt + " prompt tokens; the conversation "
                + "up to the previous answer has " + sharedTokens + " (less at most a block where tokens join differently)");
    }
}
