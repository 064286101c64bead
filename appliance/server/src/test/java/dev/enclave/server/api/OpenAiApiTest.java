package dev.enclave.server.api;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The OpenAI-shaped API over real HTTP against the bundled stories260K model. */
@QuarkusTest
class OpenAiApiTest {

    /** llama.cpp's greedy continuation of "Once upon a time" on stories260K (shared/fixtures reference). */
    static final String GREEDY_16 = ", there was a little girl named Lily. She loved to play outsid";
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void listsTheBundledModel() {
        given().get("/v1/models").then().statusCode(200)
                .body("object", equalTo("list"))
                .body("data[0].id", equalTo("stories260K"))
                .body("data[0].object", equalTo("model"))
                .body("data[0].backend", equalTo("cpu"))
                .body("data[0].layers.cpu", equalTo(5));
        given().get("/v1/models/stories260K").then().statusCode(200).body("id", equalTo("stories260K"));
        given().get("/v1/models/nope").then().statusCode(404).body("error.code", equalTo("model_not_found"));
    }

    @Test
    void completesGreedily() {
        given().contentType(ContentType.JSON)
                .body("{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":20,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200)
                .body("object", equalTo("text_completion"))
                .body("choices[0].text", equalTo(GREEDY_16))
                .body("choices[0].finish_reason", equalTo("length"))
                .body("usage.prompt_tokens", equalTo(5))
                .body("usage.completion_tokens", equalTo(20))
                .body("usage.total_tokens", equalTo(25));
    }

    @Test
    void chatCompletesGreedily() {
        given().contentType(ContentType.JSON)
                .body("{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":20,\"temperature\":0}")
                .post("/v1/chat/completions").then().statusCode(200)
                .body("object", equalTo("chat.completion"))
                .body("choices[0].message.role", equalTo("assistant"))
                .body("choices[0].message.content", equalTo(GREEDY_16));
    }

    @Test
    void streamsServerSentEventsEndingInDone() throws Exception {
        String body = given().contentType(ContentType.JSON)
                .body("{\"prompt\":\"Once upon a time\",\"max_tokens\":20,\"temperature\":0,\"stream\":true,"
                        + "\"stream_options\":{\"include_usage\":true}}")
                .post("/v1/completions").then().statusCode(200)
                .contentType(startsWith("text/event-stream"))
                .extract().asString();
        List<String> events = new ArrayList<>();
        for (String e : body.split("\n\n")) {
            if (!e.isBlank()) events.add(e);
        }
        assertEquals("data: [DONE]", events.getLast());
        StringBuilder text = new StringBuilder();
        String finish = null;
        JsonNode usage = null;
        for (String e : events.subList(0, events.size() - 1)) {
            assertTrue(e.startsWith("data: "), e);
            JsonNode chunk = JSON.readTree(e.substring(6));
            if (chunk.has("usage")) usage = chunk.get("usage");
            for (JsonNode c : chunk.get("choices")) {
                text.append(c.get("text").asText());
                if (!c.get("finish_reason").isNull()) finish = c.get("finish_reason").asText();
            }
        }
        assertEquals(GREEDY_16, text.toString());
        assertEquals("length", finish);
        assertEquals(20, usage.get("completion_tokens").asInt());
    }

    @Test
    void seededSamplingIsReproducible() {
        String req = "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":1.0,\"top_p\":0.9,\"seed\":42}";
        String a = given().contentType(ContentType.JSON).body(req).post("/v1/completions").then().statusCode(200)
                .extract().path("choices[0].text");
        String b = given().contentType(ContentType.JSON).body(req).post("/v1/completions").then().statusCode(200)
                .extract().path("choices[0].text");
        assertEquals(a, b);
    }

    @Test
    void refusesBadRequestsWithOpenAiErrors() {
        given().contentType(ContentType.JSON).body("{\"prompt\": \"unterminated")
                .post("/v1/completions").then().statusCode(400)
                .body("error.type", equalTo("invalid_request_error"))
                .body("error.message", containsString("malformed JSON"));
        given().contentType(ContentType.JSON).body("[1,2]")
                .post("/v1/completions").then().statusCode(400);
        given().contentType(ContentType.JSON).body("{\"model\":\"gpt-4\",\"prompt\":\"hi\"}")
                .post("/v1/completions").then().statusCode(404)
                .body("error.code", equalTo("model_not_found"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"hi\",\"max_tokens\":0}")
                .post("/v1/completions").then().statusCode(400).body("error.param", equalTo("max_tokens"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"hi\",\"max_tokens\":100000}")
                .post("/v1/completions").then().statusCode(400).body("error.param", equalTo("max_tokens"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"hi\",\"temperature\":7}")
                .post("/v1/completions").then().statusCode(400).body("error.param", equalTo("temperature"));
        given().contentType(ContentType.JSON).body("{\"messages\":[]}")
                .post("/v1/chat/completions").then().statusCode(400).body("error.param", equalTo("messages"));
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}")
                .post("/v1/chat/completions").then().statusCode(400);
        given().get("/v1/nothing-here").then().statusCode(404).body("error.code", equalTo("unknown_url"));
    }

    @Test
    void refusesPromptLongerThanTheContext() {
        String longPrompt = "Once upon a time ".repeat(700); // > 2048 tokens
        given().contentType(ContentType.JSON).body("{\"prompt\":\"" + longPrompt + "\",\"max_tokens\":4}")
                .post("/v1/completions").then().statusCode(400)
                .body("error.code", equalTo("context_length_exceeded"));
        given().contentType(ContentType.JSON).body("{\"prompt\":\"Once upon a time\",\"max_tokens\":2046}")
                .post("/v1/completions").then().statusCode(400)
                .body("error.code", equalTo("context_length_exceeded"));
    }

    @Test
    void refusesOversizedBodies() {
        String huge = "{\"prompt\":\"" + "a".repeat((int) OpenAiRoutes.MAX_BODY_BYTES + 10) + "\"}";
        given().contentType(ContentType.JSON).body(huge).post("/v1/completions").then().statusCode(413);
    }

    @Test
    void logprobsMatchTheReferenceDistribution() throws Exception {
        JsonNode ref = JSON.readTree(java.nio.file.Path.of(System.getProperty("enclave.shared.dir", "../../../shared"),
                "fixtures/models/stories260K-F32.ref.json").toFile());
        JsonNode f64 = ref.get("f64_reference").get("last_logits");
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (JsonNode v : f64) max = Math.max(max, v.asDouble());
        for (JsonNode v : f64) sum += Math.exp(v.asDouble() - max);
        double expectedFirst = f64.get(432).asDouble() - (max + Math.log(sum)); // "," is the greedy first token

        JsonNode chat = JSON.readTree(given().contentType(ContentType.JSON)
                .body("{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":5,\"temperature\":0,"
                        + "\"logprobs\":true,\"top_logprobs\":3}")
                .post("/v1/chat/completions").then().statusCode(200).extract().asString());
        JsonNode content = chat.get("choices").get(0).get("logprobs").get("content");
        assertEquals(5, content.size());
        assertEquals(",", content.get(0).get("token").asText());
        assertEquals(expectedFirst, content.get(0).get("logprob").asDouble(), 1e-4);
        for (JsonNode e : content) {
            assertEquals(3, e.get("top_logprobs").size());
            assertEquals(e.get("logprob").asDouble(), e.get("top_logprobs").get(0).get("logprob").asDouble(), 1e-6); // greedy = top 1
            assertTrue(e.get("logprob").asDouble() <= 0);
        }
        String streamed = given().contentType(ContentType.JSON)
                .body("{\"prompt\":\"Once upon a time\",\"max_tokens\":5,\"temperature\":0,\"logprobs\":2,\"stream\":true}")
                .post("/v1/completions").then().statusCode(200).extract().asString();
        int tokens = 0;
        for (String ev : streamed.split("\n\n")) {
            if (!ev.startsWith("data: {")) continue;
            JsonNode c = JSON.readTree(ev.substring(6)).get("choices").get(0);
            if (c.get("logprobs").isObject()) tokens += c.get("logprobs").get("tokens").size();
        }
        assertEquals(5, tokens);
        given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":50}")
                .post("/v1/chat/completions").then().statusCode(400).body("error.param", equalTo("top_logprobs"));
    }

    @Test
    void jsonObjectResponseFormatConstrainsTheOutput() throws Exception {
        for (int seed = 1; seed <= 3; seed++) {
            JsonNode r = JSON.readTree(given().contentType(ContentType.JSON)
                    .body("{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":80,\"seed\":" + seed
                            + ",\"response_format\":{\"type\":\"json_object\"}}")
                    .post("/v1/chat/completions").then().statusCode(200).extract().asString());
            String text = r.get("choices").get(0).get("message").get("content").asText();
            assertTrue(text.strip().startsWith("{"), text);
            if (r.get("choices").get(0).get("finish_reason").asText().equals("stop")) JSON.readTree(text); // complete: must parse
        }
        given().contentType(ContentType.JSON).body("{\"prompt\":\"x\",\"response_format\":{\"type\":\"yaml\"}}")
                .post("/v1/completions").then().statusCode(400).body("error.param", equalTo("response_format"));
    }

    /** json_schema: every finished answer parses and fits the schema, whatever the (tiny, story-telling) model prefers. */
    @Test
    void jsonSchemaResponseFormatConstrainsTheOutput() throws Exception {
        String schema = "{\"type\":\"object\",\"properties\":{\"hero\":{\"type\":\"string\",\"enum\":[\"Lily\",\"Tom\",\"Ben\"]},"
                + "\"age\":{\"type\":\"integer\"},\"happy\":{\"type\":\"boolean\"},\"friends\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2}},"
                + "\"required\":[\"hero\",\"age\",\"happy\"],\"additionalProperties\":false}";
        int finished = 0;
        for (int seed = 1; seed <= 6; seed++) {
            JsonNode r = JSON.readTree(given().contentType(ContentType.JSON)
                    .body("{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":500,\"seed\":" + seed
                            + ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"story\",\"strict\":true,\"schema\":" + schema + "}}}")
                    .post("/v1/chat/completions").then().statusCode(200).extract().asString());
            JsonNode c = r.get("choices").get(0);
            if (!c.get("finish_reason").asText().equals("stop")) continue; // cut by max_tokens inside a string: still a valid prefix
            finished++;
            JsonNode doc = JSON.readTree(c.get("message").get("content").asText());
            assertTrue(java.util.List.of("Lily", "Tom", "Ben").contains(doc.get("hero").asText()), doc.toString());
            assertTrue(doc.get("age").isIntegralNumber() && doc.get("happy").isBoolean(), doc.toString());
            doc.fieldNames().forEachRemaining(k -> assertTrue(java.util.Set.of("hero", "age", "happy", "friends").contains(k), k));
            if (doc.has("friends")) assertTrue(doc.get("friends").size() <= 2);
        }
        assertTrue(finished >= 2, "answers finished: " + finished);
        for (String bad : new String[] {"{\"type\":\"string\",\"pattern\":\"a+\"}", "{\"$ref\":\"https://example.com/s.json\"}",
                "{\"type\":\"object\",\"properties\":{},\"required\":[\"x\"]}"}) {
            given().contentType(ContentType.JSON).body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                    + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":" + bad + "}}}")
                    .post("/v1/chat/completions").then().statusCode(400).body("error.param", equalTo("response_format"));
        }
    }

    @Test
    void schedulerMetricsOnPrometheusEndpoint() {
        given().contentType(ContentType.JSON).body("{\"prompt\":\"Once upon a time\",\"max_tokens\":3,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200);
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        for (String name : new String[] {"enclave_queue_depth", "enclave_sequences_active", "enclave_kv_blocks_used", "enclave_kv_blocks_free",
                "enclave_prefix_cache_hit_ratio", "enclave_tokens_generated_total", "enclave_ttft_last_seconds", "enclave_inter_token_last_seconds",
                "enclave_speculative_steps_total", "enclave_speculative_drafted_total", "enclave_speculative_accepted_total",
                "enclave_speculative_acceptance_ratio", "enclave_speculative_tokens_per_step"}) {
            assertTrue(metrics.contains(name), "missing " + name);
        }
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("enclave_tokens_generated_total") && !l.endsWith(" 0.0")), "no tokens counted");
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("enclave_backend_layers{backend=\"cpu\"") && l.endsWith(" 5.0")), "layers on the CPU");
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("enclave_backend_layers{backend=\"opencl\"") && l.endsWith(" 0.0")), "none on OpenCL");
    }

    @Test
    void healthAndPage() {
        given().get("/q/health").then().statusCode(200).body("status", equalTo("UP"))
                .body("checks.find { it.name == 'model' }.data.id", equalTo("stories260K"));
        given().get("/generate.html").then().statusCode(200).body(containsString("<script src=\"/app.js\""));
        given().get("/app.js").then().statusCode(200).body(containsString("/v1/completions"));
    }

    /** n > 1: the prompt is read once and forked; each choice equals a single request with seed + index. */
    @Test
    void parallelSamplingReturnsNChoices() throws Exception {
        String base = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":12,\"temperature\":0.9,";
        JsonNode many = JSON.readTree(given().contentType(ContentType.JSON).body(base + "\"seed\":7,\"n\":3}")
                .post("/v1/chat/completions").then().statusCode(200).extract().asString());
        assertEquals(3, many.get("choices").size());
        int completion = 0;
        for (int i = 0; i < 3; i++) {
            JsonNode c = many.get("choices").get(i);
            assertEquals(i, c.get("index").asInt());
            JsonNode one = JSON.readTree(given().contentType(ContentType.JSON).body(base + "\"seed\":" + (7 + i) + "}")
                    .post("/v1/chat/completions").then().statusCode(200).extract().asString());
            assertEquals(one.at("/choices/0/message/content").asText(), c.at("/message/content").asText(), "choice " + i);
            completion += one.at("/usage/completion_tokens").asInt();
        }
        assertEquals(completion, many.at("/usage/completion_tokens").asInt());
        assertEquals(many.at("/usage/prompt_tokens").asInt(), JSON.readTree(given().contentType(ContentType.JSON)
                .body(base + "\"seed\":7}").post("/v1/chat/completions").asString()).at("/usage/prompt_tokens").asInt(),
                "the prompt counts once");

        String sse = given().contentType(ContentType.JSON).body(base + "\"seed\":7,\"n\":2,\"stream\":true}")
                .post("/v1/chat/completions").then().statusCode(200).extract().asString();
        List<String> events = sse.lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
        assertEquals("[DONE]", events.getLast());
        StringBuilder[] text = {new StringBuilder(), new StringBuilder()};
        int finished = 0;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode c = JSON.readTree(e).at("/choices/0");
            int idx = c.get("index").asInt();
            text[idx].append(c.at("/delta/content").asText(""));
            if (!c.get("finish_reason").isNull()) finished++;
        }
        assertEquals(2, finished);
        assertEquals(many.at("/choices/0/message/content").asText(), text[0].toString());
        assertEquals(many.at("/choices/1/message/content").asText(), text[1].toString());
        given().contentType(ContentType.JSON).body(base + "\"n\":99}").post("/v1/chat/completions").then().statusCode(400)
                .body("error.param", equalTo("n"));
    }
}
