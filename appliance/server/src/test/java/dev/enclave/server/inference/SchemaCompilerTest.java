package dev.enclave.server.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.enclave.runtime.constrain.JsonSchema;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Schemas are the client's to write and their cost is everyone's: a kilobyte of $defs fanning out through anyOf
 * must neither hang compilation nor yield an automaton whose per-token mask stalls the scheduler. (The time limits
 * below only catch a hang; before the bounds, these schemas expanded 2^30 times.)
 */
class SchemaCompilerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * d0 … d{levels}: each level an anyOf of {@code width} alternatives that all lead to the next level, directly or
     * as the one property of distinct objects. Expanded, that is width^levels schemas.
     */
    static String fanOut(int levels, int width, boolean distinctObjects) {
        StringBuilder defs = new StringBuilder();
        for (int i = 0; i < levels; i++) {
            String next = i + 1 < levels ? "{\"$ref\":\"#/$defs/d" + (i + 1) + "\"}" : "{\"type\":\"string\"}";
            StringBuilder alt = new StringBuilder();
            for (int w = 0; w < width; w++) {
                alt.append(w == 0 ? "" : ",");
                if (distinctObjects) alt.append("{\"type\":\"object\",\"properties\":{\"").append((char) ('a' + w)).append("\":").append(next).append("}}");
                else alt.append(next);
            }
            defs.append(i == 0 ? "" : ",").append("\"d").append(i).append("\":{\"anyOf\":[").append(alt).append("]}");
        }
        return "{\"$defs\":{" + defs + "},\"$ref\":\"#/$defs/d0\"}";
    }

    @Test
    void aFanOutOfReferencesCompilesOnceAndFlattens() throws Exception {
        String schema = fanOut(16, 4, false); // 4^16 = 4 billion expansions
        assertTrue(schema.length() < 2048, "a kilobyte or two: " + schema.length());
        JsonNode node = JSON.readTree(schema);
        JsonSchema compiled = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> SchemaCompiler.compile(node));
        // every alternative is the same target: the whole tree is one string
        assertInstanceOf(JsonSchema.Str.class, compiled);
    }

    @Test
    void anAmbiguousFanOutIsRefusedNamingTheLimit() throws Exception {
        String bomb = fanOut(12, 4, true);
        assertTrue(bomb.length() < 4096, "a few kilobytes: " + bomb.length());
        JsonNode node = JSON.readTree(bomb);
        ApiException e = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThrows(ApiException.class, () -> SchemaCompiler.compile(node)));
        assertEquals(400, e.status);
        assertEquals("response_format", e.param);
        assertTrue(e.getMessage().contains("limit " + SchemaCompiler.MAX_PARSES), e.getMessage());
        // a few levels of the same shape are fine
        JsonSchema ok = SchemaCompiler.compile(JSON.readTree(fanOut(3, 4, true)));
        assertInstanceOf(JsonSchema.Union.class, ok);
    }

    @Test
    void otherBoundsAreNamed() throws Exception {
        StringBuilder wide = new StringBuilder("{\"anyOf\":[");
        for (int i = 0; i < 100; i++) wide.append(i == 0 ? "" : ",").append("{\"const\":").append(i).append('}');
        wide.append("]}");
        ApiException e = assertThrows(ApiException.class, () -> SchemaCompiler.compile(JSON.readTree(wide.toString())));
        assertTrue(e.getMessage().contains("more than " + SchemaCompiler.MAX_ALTERNATIVES), e.getMessage());
        ApiException rec = assertThrows(ApiException.class, () -> SchemaCompiler.compile(JSON.readTree(
                "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/$defs/n\"}}}},\"$ref\":\"#/$defs/n\"}")));
        assertTrue(rec.getMessage().contains("recursive"), rec.getMessage());
        StringBuilder many = new StringBuilder("{\"type\":\"object\",\"properties\":{");
        for (int i = 0; i < 60; i++) {
            many.append(i == 0 ? "" : ",").append("\"p").append(i).append("\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{");
            for (int j = 0; j < 40; j++) many.append(j == 0 ? "" : ",").append("\"q").append(j).append("\":{\"type\":\"string\"}");
            many.append("}}}");
        }
        many.append("}}");
        ApiException big = assertThrows(ApiException.class, () -> SchemaCompiler.compile(JSON.readTree(many.toString())));
        assertTrue(big.getMessage().contains("more than " + SchemaCompiler.MAX_NODES + " nodes"), big.getMessage());
    }
}
