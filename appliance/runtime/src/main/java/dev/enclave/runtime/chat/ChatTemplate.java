package dev.enclave.runtime.chat;

import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.tokenizer.Tokenizer;
import java.time.Clock;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * A model's chat template ({@code tokenizer.chat_template}) rendered the way Hugging Face's
 * {@code apply_chat_template} does: {@code messages}, {@code tools}, {@code add_generation_prompt},
 * {@code bos_token}, {@code eos_token}, {@code raise_exception} and {@code strftime_now}. Messages and tools are
 * JSON-like values (Map, List, String, Long, Double, Boolean, null).
 */
public final class ChatTemplate {

    private final String source;
    private final JinjaTemplate template;
    private final String bosToken;
    private final String eosToken;
    private final Clock clock;

    public ChatTemplate(String source, String bosToken, String eosToken, Clock clock) {
        this.source = source;
        this.template = JinjaTemplate.parse(source);
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.clock = clock;
    }

    /** The model's template, if its GGUF file has one. */
    public static Optional<ChatTemplate> fromGGUF(GGUFFile gguf, Tokenizer tokenizer) {
        String src = gguf.getString("tokenizer.chat_template", null);
        if (src == null || src.isBlank()) return Optional.empty();
        return Optional.of(new ChatTemplate(src,
                tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : "",
                tokenizer.eos() >= 0 ? tokenizer.tokenText(tokenizer.eos()) : "",
                Clock.systemDefaultZone()));
    }

    public String source() {
        return source;
    }

    public String bosToken() {
        return bosToken;
    }

    public String render(List<Map<String, Object>> messages, List<Map<String, Object>> tools, boolean addGenerationPrompt) {
        return render(messages, tools, addGenerationPrompt, Map.of());
    }

    /** {@code extra} adds template variables, e.g. {@code enable_thinking}. */
    public String render(List<Map<String, Object>> messages, List<Map<String, Object>> tools, boolean addGenerationPrompt,
                         Map<String, Object> extra) {
        Map<String, Object> ctx = new HashMap<>();
        ctx.put("messages", messages);
        if (tools != null && !tools.isEmpty()) ctx.put("tools", tools);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        ctx.put("bos_token", bosToken);
        ctx.put("eos_token", eosToken);
        ctx.put("strftime_now", (JinjaTemplate.Function) (args, kwargs) -> strftime(JinjaTemplate.str(args.getFirst())));
        ctx.putAll(extra);
        return template.render(ctx);
    }

    /** The common strftime directives, enough for the dates that chat templates print. */
    String strftime(String pattern) {
        ZonedDateTime now = ZonedDateTime.now(clock);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c != '%' || i + 1 == pattern.length()) {
                sb.append(c);
                continue;
            }
            char d = pattern.charAt(++i);
            sb.append(switch (d) {
                case 'd' -> String.format("%02d", now.getDayOfMonth());
                case 'm' -> String.format("%02d", now.getMonthValue());
                case 'Y' -> String.valueOf(now.getYear());
                case 'y' -> String.format("%02d", now.getYear() % 100);
                case 'b' -> now.format(DateTimeFormatter.ofPattern("MMM", Locale.ENGLISH));
                case 'B' -> now.format(DateTimeFormatter.ofPattern("MMMM", Locale.ENGLISH));
                case 'a' -> now.format(DateTimeFormatter.ofPattern("EEE", Locale.ENGLISH));
                case 'A' -> now.format(DateTimeFormatter.ofPattern("EEEE", Locale.ENGLISH));
                case 'H' -> String.format("%02d", now.getHour());
                case 'M' -> String.format("%02d", now.getMinute());
                case 'S' -> String.format("%02d", now.getSecond());
                case '%' -> "%";
                default -> "%" + d;
            });
        }
        return sb.toString();
    }

    /**
     * Token ids of a rendered prompt: special-token text is parsed as special tokens, and BOS is added only when
     * the vocabulary asks for it and the template did not already write it.
     */
    public static int[] tokenize(Tokenizer tokenizer, String rendered, String bosToken) {
        boolean hasBos = !bosToken.isEmpty() && rendered.startsWith(bosToken);
        return tokenizer.encode(rendered, !hasBos, true);
    }
}
