package dev.enclave.server.rag;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.pdfbox.pdmodel.PDDocument;
import org.apache.pdfbox.pdmodel.PDPage;
import org.apache.pdfbox.pdmodel.PDPageContentStream;
import org.apache.pdfbox.pdmodel.font.PDType1Font;
import org.apache.pdfbox.pdmodel.font.Standard14Fonts;
import org.junit.jupiter.api.Test;

/** The document index over real HTTP: collections, uploads, crawls, search, deletion and grounded chat. */
@QuarkusTest
class RagApiTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    static String unique(String base) {
        return base + "-" + Long.toHexString(System.nanoTime());
    }

    static byte[] pdf(List<String> pages) throws Exception {
        try (PDDocument doc = new PDDocument(); ByteArrayOutputStream out = new ByteArrayOutputStream()) {
            for (String text : pages) {
                PDPage page = new PDPage();
                doc.addPage(page);
                try (PDPageContentStream cs = new PDPageContentStream(doc, page)) {
                    cs.beginText();
                    cs.setFont(new PDType1Font(Standard14Fonts.FontName.HELVETICA), 11);
                    cs.newLineAtOffset(50, 700);
                    cs.showText(text);
                    cs.endText();
                }
            }
            doc.save(out);
            return out.toByteArray();
        }
    }

    static void createCollection(String name) {
        given().contentType(ContentType.JSON).body("{\"name\":\"" + name + "\",\"description\":\"test\"}")
                .post("/rag/collections").then().statusCode(201).body("name", equalTo(name));
    }

    @Test
    void uploadSearchCiteAndDelete() throws Exception {
        String col = unique("ward");
        createCollection(col);
        given().contentType(ContentType.JSON).body("{\"name\":\"" + col + "\"}")
                .post("/rag/collections").then().statusCode(400);

        byte[] manual = pdf(List.of("Welcome to the ward handbook.",
                "The infusion pump alarm means the line is occluded; check the clamp first.",
                "Visiting hours end at eight."));
        Response up = given().multiPart("file", "handbook.pdf", manual, "application/pdf")
                .multiPart("file", "notes.txt", "Night shift handover happens at seven.".getBytes(), "text/plain")
                .multiPart("file", "junk.bin", new byte[] {0, 1, 2, 3}, "application/octet-stream")
                .post("/rag/collections/" + col + "/documents");
        up.then().statusCode(201);
        JsonNode upBody = JSON.readTree(up.asString());
        assertEquals("indexed", upBody.at("/data/0/status").asText(), upBody.toString());
        assertEquals("failed", upBody.at("/data/2/status").asText());
        long pdfId = upBody.at("/data/0/id").asLong();

        Response search = given().contentType(ContentType.JSON)
                .body("{\"query\":\"what does the infusion pump alarm mean\",\"collections\":[\"" + col + "\"],\"k\":3}")
                .post("/rag/search");
        search.then().statusCode(200);
        JsonNode hits = JSON.readTree(search.asString()).get("data");
        assertEquals("handbook.pdf", hits.get(0).get("source").asText());
        assertEquals(2, hits.get(0).get("page_start").asInt());

        given().get("/rag/collections/" + col + "/documents").then().statusCode(200)
                .body("data.source", hasItem("notes.txt"))
                .body("errors.source", hasItem("junk.bin"));

        // grounded chat, not streamed: the answer carries the citations
        String chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"What does the infusion pump alarm mean?\"}],"
                + "\"max_tokens\":16,\"temperature\":0,\"enclave\":{\"collections\":[\"" + col + "\"],\"top_k\":2}}";
        Response answer = given().contentType(ContentType.JSON).body(chat).post("/v1/chat/completions");
        answer.then().statusCode(200);
        JsonNode a = JSON.readTree(answer.asString());
        assertEquals("chat.completion", a.get("object").asText());
        JsonNode cit = a.at("/enclave/citations");
        assertTrue(cit.size() >= 1, a.toString());
        assertEquals("handbook.pdf", cit.get(0).get("source").asText());
        assertEquals(2, cit.get(0).get("page_start").asInt());
        assertTrue(cit.get(0).get("snippet").asText().contains("infusion pump"));
        assertTrue(a.at("/usage/prompt_tokens").asInt() > 40, "the sources are in the prompt");

        // streamed: the answer, then one chunk with the citations, then [DONE]
        String streamed = given().contentType(ContentType.JSON).body(chat.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\""))
                .post("/v1/chat/completions").then().statusCode(200).extract().asString();
        List<String> events = streamed.lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
        assertEquals("[DONE]", events.getLast());
        JsonNode last = JSON.readTree(events.get(events.size() - 2));
        assertEquals("handbook.pdf", last.at("/enclave/citations/0/source").asText(), streamed);

        // unknown collection
        given().contentType(ContentType.JSON).body(chat.replace(col, "no-such-collection"))
                .post("/v1/chat/completions").then().statusCode(400).body("error.param", equalTo("enclave"));

        // deletion removes it from search
        given().delete("/rag/documents/" + pdfId).then().statusCode(204);
        given().delete("/rag/documents/" + pdfId).then().statusCode(404);
        given().contentType(ContentType.JSON)
                .body("{\"query\":\"infusion pump alarm\",\"collections\":[\"" + col + "\"],\"k\":5}")
                .post("/rag/search").then().statusCode(200).body("data.source", not(hasItem("handbook.pdf")));
    }

    @Test
    void embeddingsFromTheDocumentEmbedder() throws Exception {
        JsonNode r = JSON.readTree(given().contentType(ContentType.JSON)
                .body("{\"model\":\"all-minilm-l6-v2-q\",\"input\":[\"a cat on a mat\",\"a kitten on a rug\",\"interest rates rose\"]}")
                .post("/v1/embeddings").then().statusCode(200).extract().asString());
        assertEquals("all-minilm-l6-v2-q", r.get("model").asText());
        JsonNode d = r.get("data");
        assertEquals(384, d.get(0).get("embedding").size());
        double near = 0, far = 0;
        for (int i = 0; i < 384; i++) {
            near += d.get(0).get("embedding").get(i).asDouble() * d.get(1).get("embedding").get(i).asDouble();
            far += d.get(0).get("embedding").get(i).asDouble() * d.get(2).get("embedding").get(i).asDouble();
        }
        assertTrue(near > far + 0.2, near + " vs " + far);
    }

    @Test
    void oversizedUploadIsRefused() {
        String col = unique("big");
        createCollection(col);
        byte[] big = new byte[3 << 20]; // the test profile allows 2 MB
        java.util.Arrays.fill(big, (byte) 'a');
        given().multiPart("file", "big.txt", big, "text/plain").post("/rag/collections/" + col + "/documents")
                .then().statusCode(413);
        given().get("/rag/collections/" + col + "/documents").then().statusCode(200).body("data.size()", equalTo(0));
    }

    @Test
    void folderCrawlRunsInTheBackgroundWithProgress() throws Exception {
        String col = unique("share");
        createCollection(col);
        Path share = Files.createTempDirectory("share");
        for (int i = 0; i < 5; i++) Files.writeString(share.resolve("f" + i + ".md"), "# Note " + i + "\n\nSterile field number " + i + ".");
        given().contentType(ContentType.JSON).body("{\"path\":\"" + share + "\"}")
                .post("/rag/collections/" + col + "/crawl").then().statusCode(202);
        String state = "";
        for (int i = 0; i < 200 && !state.equals("done"); i++) {
            Thread.sleep(100);
            state = given().get("/rag/collections/" + col + "/crawl").then().statusCode(200).extract().path("state");
        }
        assertEquals("done", state);
        given().get("/rag/collections/" + col + "/crawl").then().body("files_done", equalTo(5)).body("files_total", equalTo(5));
        given().get("/rag/collections/" + col + "/documents").then().body("data.size()", equalTo(5));
    }

    @Test
    void badRequestsGetClearErrors() {
        given().contentType(ContentType.JSON).body("{not json").post("/rag/search").then().statusCode(400);
        given().contentType(ContentType.JSON).body("{\"query\":\"\"}").post("/rag/search").then().statusCode(400);
        given().get("/rag/collections/nope/documents").then().statusCode(404);
        given().contentType(ContentType.JSON).body("{\"name\":\"../etc\"}").post("/rag/collections").then().statusCode(400);
        given().contentType(ContentType.JSON).body("{\"path\":\"/definitely/not/here\"}")
                .post("/rag/collections/nope/crawl").then().statusCode(404);
    }
}
