package dev.enclave.server.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;

import dev.enclave.runtime.chat.ChatTemplate;
import dev.enclave.runtime.model.TransformerModel;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A chat model (Qwen2.5 template in its GGUF) served over the API: the prompt goes through its chat template. */
@QuarkusTest
@TestProfile(ChatTemplateServingTest.QwenProfile.class)
public class ChatTemplateServingTest {

    public static Path qwen() {
        return Path.of(System.getProperty("enclave.shared.dir", "../../../shared"), "fixtures/models/syn-qwen2-bpe-F32.gguf").toAbsolutePath();
    }

    public static class QwenProfile implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("enclave.model", qwen().toString());
        }
    }

    @jakarta.inject.Inject
    dev.enclave.server.model.ModelService models;

    /**
     * A chat client's next turn re-sends the conversation as text: the first turn's KV blocks, its answer's
     * included, come from the prefix cache (the answer is read as the tokens it was generated as).
     */
    @Test
    void aFollowUpTurnReusesTheCachedAnswer() throws Exception {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        com.fasterxml.jackson.databind.node.ObjectNode body = json.createObjectNode().put("max_tokens", 40).put("temperature", 0);
        com.fasterxml.jackson.databind.node.ArrayNode messages = body.putArray("messages");
        messages.addObject().put("role", "system").put("content", "Be brief.");
        messages.addObject().put("role", "user").put("content", "Tell me a story about a lighthouse keeper.");
        var first = given().contentType(ContentType.JSON).body(json.writeValueAsString(body))
                .post("/v1/chat/completions").then().statusCode(200).extract();
        String answer = first.path("choices[0].message.content");
        int promptTokens = first.path("usage.prompt_tokens");
        int answerTokens = first.path("usage.completion_tokens");
        org.junit.jupiter.api.Assertions.assertFalse(answer.isEmpty());

        messages.addObject().put("role", "assistant").put("content", answer);
        messages.addObject().put("role", "user").put("content", "Go on.");
        body.put("max_tokens", 1);
        long before = models.metrics().cachedPromptTokens();
        given().contentType(ContentType.JSON).body(json.writeValueAsString(body))
                .post("/v1/chat/completions").then().statusCode(200);
        long reused = models.metrics().cachedPromptTokens() - before;
        int bs = org.eclipse.microprofile.config.ConfigProvider.getConfig()
                .getOptionalValue("enclave.scheduler.block-size", Integer.class).orElse(16);
        long wholeTurn = (long) (promptTokens + answerTokens - 2) / bs * bs; // full blocks of prompt and answer
        org.junit.jupiter.api.Assertions.assertTrue(wholeTurn > (long) promptTokens / bs * bs, "the answer spans a block");
        org.junit.jupiter.api.Assertions.assertTrue(reused >= wholeTurn,
                "reused " + reused + " cached prompt tokens; the first turn's full blocks hold " + wholeTurn);
    }

    @Test
    void chatPromptIsRenderedByTheModelsTemplate() throws Exception {
        int expectedPromptTokens;
        try (TransformerModel m = TransformerModel.load(qwen())) {
            ChatTemplate t = ChatTemplate.fromGGUF(m.gguf(), m.tokenizer()).orElseThrow();
            String rendered = t.render(List.of(Map.of("role", "system", "content", "Be brief."), Map.of("role", "user", "content", "Hi")), null, true);
            expectedPromptTokens = ChatTemplate.tokenize(m.tokenizer(), rendered, t.bosToken()).length;
        }
        given().contentType(ContentType.JSON)
                .body("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}],"
                        + "\"max_tokens\":4,\"temperature\":0}")
                .post("/v1/chat/completions").then().statusCode(200)
                .body("model", equalTo("syn-qwen2-bpe-F32"))
                .body("usage.prompt_tokens", equalTo(expectedPromptTokens))
                .body("usage.completion_tokens", equalTo(4));
        // tools go into the prompt through the template; the answer is parsed for calls (none from random weights)
        int withTools = given().contentType(ContentType.JSON)
                .body("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}],"
                        + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\"}}}],"
                        + "\"max_tokens\":4,\"temperature\":0,\"stream\":false}")
                .post("/v1/chat/completions").then().statusCode(200)
                .body("choices[0].finish_reason", org.hamcrest.Matchers.oneOf("length", "stop", "tool_calls"))
                .extract().path("usage.prompt_tokens");
        org.junit.jupiter.api.Assertions.assertTrue(withTools > expectedPromptTokens + 20, withTools + " vs " + expectedPromptTokens);
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":\"function\"}]}")
                .post("/v1/chat/completions").then().statusCode(400).body("error.param", equalTo("tools"));
    }
}
