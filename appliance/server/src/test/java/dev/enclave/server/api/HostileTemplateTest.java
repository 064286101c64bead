package dev.enclave.server.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.gguf.GGUFWriter;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A model whose chat template does quartic work in the conversation's length (four nested loops over the
 * messages that print nothing): a short chat renders, a long one fails that request with a clear error naming the
 * limit, off the event loop, and the server goes on answering everyone else.
 */
@QuarkusTest
@TestProfile(HostileTemplateTest.Profile.class)
class HostileTemplateTest {

    static final String TEMPLATE = "{% for a in messages %}{% for b in messages %}{% for c in messages %}{% for d in messages %}"
            + "{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% for m in messages %}{{ m.content }}\n{% endfor %}";

    public static class Profile implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            try {
                Path out = Path.of("target", "hostile-template.gguf").toAbsolutePath();
                Files.createDirectories(out.getParent());
                try (GGUFFile f = GGUFFile.open(Path.of("src/main/resources/models/stories260K.gguf"))) {
                    GGUFWriter w = new GGUFWriter();
                    f.metadata().forEach((k, v) -> w.put(k, f.typedValue(k)));
                    w.put("tokenizer.chat_template", TEMPLATE);
                    for (GGUFTensorInfo t : f.tensors().values()) {
                        w.tensor(t.name(), t.type(), MemorySegment.ofArray(f.tensorData(t).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)), t.dims());
                    }
                    w.write(out);
                }
                return Map.of("enclave.model", out.toString());
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    private static String chat(int messages) {
        StringBuilder m = new StringBuilder("[");
        for (int i = 0; i < messages; i++) {
            m.append(i == 0 ? "" : ",").append("{\"role\":\"").append(i % 2 == 0 ? "user" : "assistant").append("\",\"content\":\"hi ").append(i).append("\"}");
        }
        return "{\"messages\":" + m + "],\"max_tokens\":2,\"temperature\":0}";
    }

    @Test
    void aTemplateThatRunsAwayFailsItsRequestOnly() {
        given().contentType(ContentType.JSON).body(chat(3)).post("/v1/chat/completions").then().statusCode(200);
        // 61^4 = 13.8 million loop steps: over the render budget
        given().contentType(ContentType.JSON).body(chat(61)).post("/v1/chat/completions").then().statusCode(400)
                .body("error.message", containsString("limit"));
        given().contentType(ContentType.JSON).body("{\"messages\":" + chat(61).substring(12).replace(",\"max_tokens\":2,\"temperature\":0}", "")
                        + ",\"stream\":false,\"options\":{\"num_predict\":2}}")
                .post("/api/chat").then().statusCode(400).body("error", containsString("limit"));
        // everyone else is still served
        given().contentType(ContentType.JSON).body("{\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200).body("choices[0].finish_reason", equalTo("length"));
    }
}
