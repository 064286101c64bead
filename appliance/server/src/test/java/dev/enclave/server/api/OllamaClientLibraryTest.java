package dev.enclave.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.ollama.OllamaChatModel;
import dev.langchain4j.model.ollama.OllamaStreamingChatModel;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URL;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** LangChain4j's Ollama client, written by others, talks to our Ollama API: plain and streamed (NDJSON) answers. */
@QuarkusTest
class OllamaClientLibraryTest {

    @TestHTTPResource("/")
    URL base;

    String baseUrl() {
        return base.toString().replaceAll("/$", "");
    }

    @Test
    void plainAnswer() {
        OllamaChatModel model = OllamaChatModel.builder().baseUrl(baseUrl()).modelName("stories260K")
                .temperature(0.0).numPredict(20).build();
        ChatResponse r = model.chat(dev.langchain4j.model.chat.request.ChatRequest.builder()
                .messages(dev.langchain4j.data.message.UserMessage.from("Once upon a time")).build());
        assertEquals(OpenAiApiTest.GREEDY_16, r.aiMessage().text());
        assertEquals(20, r.tokenUsage().outputTokenCount());
    }

    @Test
    void streamedAnswer() throws Exception {
        OllamaStreamingChatModel model = OllamaStreamingChatModel.builder().baseUrl(baseUrl()).modelName("stories260K")
                .temperature(0.0).numPredict(20).build();
        StreamCollector stream = new StreamCollector();
        model.chat("Once upon a time", stream);
        List<String> partials = stream.partials;
        ChatResponse r = stream.done.get(60, TimeUnit.SECONDS);
        assertTrue(partials.size() > 5, "expected many streamed pieces, got " + partials);
        assertEquals(OpenAiApiTest.GREEDY_16, String.join("", partials));
        assertEquals(OpenAiApiTest.GREEDY_16, r.aiMessage().text());
    }
}
