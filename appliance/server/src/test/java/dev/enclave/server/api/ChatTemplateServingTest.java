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
class ChatTemplateServingTest {

    static Path qwen() {
        return Path.of(System.getProperty("enclave.shared.dir", "../../../shared"), "fixtures/models/syn-qwen2-bpe-F32.gguf").toAbsolutePath();
    }

    public static class QwenProfile implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("enclave.model", qwen().toString());
        }
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
