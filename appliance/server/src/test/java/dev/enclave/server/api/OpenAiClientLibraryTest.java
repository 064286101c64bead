package dev.enclave.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URL;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** LangChain4j's OpenAI client, written by others, talks to the running server: plain and streamed answers. */
@QuarkusTest
class OpenAiClientLibraryTest {

    @TestHTTPResource("/v1")
    URL api;

    @Test
    void plainAnswer() {
        OpenAiChatModel model = OpenAiChatModel.builder()
                .baseUrl(api.toString()).apiKey("not-needed").modelName("stories260K")
                .temperature(0.0).maxTokens(20).build();
        ChatResponse r = model.chat(dev.langchain4j.model.chat.request.ChatRequest.builder()
                .messages(dev.langchain4j.data.message.UserMessage.from("Once upon a time")).build());
        assertEquals(OpenAiApiTest.GREEDY_16, r.aiMessage().text());
        assertEquals(5, r.tokenUsage().inputTokenCount());
        assertEquals(20, r.tokenUsage().outputTokenCount());
    }

    @Test
    void streamedAnswer() throws Exception {
        OpenAiStreamingChatModel model = OpenAiStreamingChatModel.builder()
                .baseUrl(api.toString()).apiKey("not-needed").modelName("stories260K")
                .temperature(0.0).maxTokens(20).build();
        StreamCollector stream = new StreamCollector();
        model.chat("Once upon a time", stream);
        List<String> partials = stream.partials;
        ChatResponse r = stream.done.get(60, TimeUnit.SECONDS);
        assertTrue(partials.size() > 5, "expected many streamed pieces, got " + partials);
        assertEquals(OpenAiApiTest.GREEDY_16, String.join("", partials));
        assertEquals(OpenAiApiTest.GREEDY_16, r.aiMessage().text());
        assertFalse(r.aiMessage().text().isBlank());
    }
}
