package dev.enclave.runtime.chat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * One fixed conversation through each family's template; the expected strings are each family's documented
 * prompt format.
 */
class ChatTemplateTest {

    static final Clock FIXED = Clock.fixed(Instant.parse("2026-11-24T10:00:00Z"), ZoneOffset.UTC);

    static Map<String, Object> msg(String role, String content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    static final List<Map<String, Object>> WITH_SYSTEM = List.of(msg("system", "You are helpful."), msg("user", "Hi"),
            msg("assistant", "Hello!"), msg("user", "How are you?"));
    static final List<Map<String, Object>> NO_SYSTEM = List.of(msg("user", "Hi"), msg("assistant", "Hello!"), msg("user", "How are you?"));

    static ChatTemplate fromFixture(String model) throws IOException {
        try (GGUFFile g = GGUFFile.open(SharedData.model(model))) {
            Tokenizer t = Tokenizer.fromGGUF(g);
            return new ChatTemplate(g.getString("tokenizer.chat_template"), t.tokenText(t.bos()), t.tokenText(t.eos()), FIXED);
        }
    }

    static ChatTemplate fromResource(String name, String bos, String eos) throws IOException {
        try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/chat-templates/" + name)) {
            return new ChatTemplate(new String(in.readAllBytes(), StandardCharsets.UTF_8), bos, eos, FIXED);
        }
    }

    @Test
    void llama32() throws IOException {
        ChatTemplate t = fromFixture("syn-llama3-bpe-F32.gguf");
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                + "Cutting Knowledge Date: December 2023\nToday Date: 24 Nov 2026\n\nYou are helpful.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(WITH_SYSTEM, null, true));
        // tools go into the first user message, as JSON indented by 4
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("type", "function");
        tool.put("function", Map.of("name", "get_time"));
        String withTools = t.render(List.of(msg("user", "Time?")), List.of(tool), true);
        assertTrue(withTools.contains("Environment: ipython\n"), withTools);
        assertTrue(withTools.contains("{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_time\"\n    }\n}"), withTools);
        assertTrue(withTools.endsWith("Time?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), withTools);
    }

    @Test
    void qwen25() throws IOException {
        ChatTemplate t = fromFixture("syn-qwen2-bpe-F32.gguf");
        assertEquals("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
                t.render(WITH_SYSTEM, null, true));
        assertEquals("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n", t.render(List.of(msg("user", "Hi")), null, false));
        // an assistant tool call and the tool's answer
        Map<String, Object> call = new LinkedHashMap<>();
        call.put("role", "assistant");
        call.put("content", "");
        call.put("tool_calls", List.of(Map.of("type", "function", "function", Map.of("name", "add", "arguments", Map.of("a", 1L)))));
        String r = t.render(List.of(msg("user", "1+?"), call, msg("tool", "2")), null, true);
        assertTrue(r.contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call><|im_end|>\n"), r);
        assertTrue(r.endsWith("<|im_start|>user\n<tool_response>\n2\n</tool_response><|im_end|>\n<|im_start|>assistant\n"), r);
    }

    @Test
    void qwen3() throws IOException {
        ChatTemplate t = fromResource("qwen3.jinja", "", "<|im_end|>");
        List<Map<String, Object>> conv = List.of(msg("system", "You are helpful."), msg("user", "Hi"),
                msg("assistant", "<think>\nhmm\n</think>\n\nHello!"), msg("user", "How are you?"));
        String expected = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n";
        assertEquals(expected, t.render(conv, null, true));
        assertEquals(expected + "<think>\n\n</think>\n\n", t.render(conv, null, true, Map.of("enable_thinking", false)));
    }

    @Test
    void phi3() throws IOException {
        ChatTemplate t = fromResource("phi3.jinja", "<s>", "<|endoftext|>");
        assertEquals("<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
                + "<|user|>\nHow are you?<|end|>\n<|assistant|>\n", t.render(WITH_SYSTEM, null, true));
        assertEquals("<|user|>\nHi<|end|>\n<|endoftext|>", t.render(List.of(msg("user", "Hi")), null, false));
    }

    @Test
    void mistral() throws IOException {
        ChatTemplate t = fromResource("mistral.jinja", "<s>", "</s>");
        assertEquals("<s>[INST] Hi [/INST]Hello!</s>[INST] How are you? [/INST]", t.render(NO_SYSTEM, null, true));
        TemplateException e = assertThrows(TemplateException.class, () -> t.render(WITH_SYSTEM, null, true));
        assertTrue(e.getMessage().contains("roles must alternate"), e.getMessage());
    }

    @Test
    void gemma() throws IOException {
        ChatTemplate t = fromResource("gemma.jinja", "<bos>", "<eos>");
        assertEquals("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                + "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n", t.render(NO_SYSTEM, null, true));
        assertThrows(TemplateException.class, () -> t.render(WITH_SYSTEM, null, true));
    }

    @Test
    void deepSeekR1() throws IOException {
        ChatTemplate t = fromResource("deepseek-r1.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
        List<Map<String, Object>> conv = List.of(msg("system", "You are helpful."), msg("user", "Hi"),
                msg("assistant", "<think>hmm</think>Hello!"), msg("user", "How are you?"));
        assertEquals("<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜>"
                + "<｜User｜>How are you?<｜Assistant｜><think>\n", t.render(conv, null, true));
    }

    @Test
    void renderedPromptTokenizesSpecialTokensOnce() throws IOException {
        try (GGUFFile g = GGUFFile.open(SharedData.model("syn-llama3-bpe-F32.gguf"))) {
            Tokenizer tok = Tokenizer.fromGGUF(g);
            ChatTemplate t = ChatTemplate.fromGGUF(g, tok).orElseThrow();
            int[] ids = ChatTemplate.tokenize(tok, t.render(List.of(msg("user", "Hi")), null, true), t.bosToken());
            assertEquals(tok.bos(), ids[0]);
            assertTrue(ids[1] != tok.bos(), "BOS must not be doubled");
            int eot = 1033; // <|eot_id|>
            assertTrue(java.util.Arrays.stream(ids).anyMatch(i -> i == eot), "special tokens parsed as tokens");
            assertArrayEquals(tok.encode("<|start_header_id|>", false, true), new int[] {ids[1]});
        }
    }
}
