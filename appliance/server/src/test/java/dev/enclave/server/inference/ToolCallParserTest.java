package dev.enclave.server.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ToolCallParserTest {

    static final List<String> TOOLS = List.of("get_weather", "add");

    @Test
    void hermesQwenFormatWithSeveralCallsAndText() {
        ToolCallParser.Parsed p = ToolCallParser.parse("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"
                + "<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}</tool_call>", TOOLS);
        assertEquals(2, p.calls().size());
        assertEquals("get_weather", p.calls().get(0).name());
        assertEquals("{\"city\":\"Oslo\"}", p.calls().get(0).argumentsJson());
        assertEquals("Let me check.", p.content());
    }

    @Test
    void llama3AndMistralFormats() {
        ToolCallParser.Parsed l = ToolCallParser.parse("{\"name\": \"add\", \"parameters\": {\"a\": 3}}", TOOLS);
        assertEquals(List.of(new ToolCallParser.Call("add", "{\"a\":3}")), l.calls());
        ToolCallParser.Parsed m = ToolCallParser.parse("[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}]", TOOLS);
        assertEquals("get_weather", m.calls().getFirst().name());
    }

    @Test
    void plainTextAndUnknownFunctionsAreNotCalls() {
        assertTrue(ToolCallParser.parse("It is sunny.", TOOLS).calls().isEmpty());
        assertTrue(ToolCallParser.parse("{\"name\": \"rm_rf\", \"parameters\": {}}", TOOLS).calls().isEmpty());
        assertTrue(ToolCallParser.parse("<tool_call>{broken</tool_call>", TOOLS).calls().isEmpty());
    }
}
