package dev.enclave.runtime.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JinjaTemplateTest {

    static String render(String src, Map<String, Object> ctx) {
        return JinjaTemplate.parse(src).render(ctx);
    }

    @Test
    void whitespaceControlAndBlockTrimming() {
        assertEquals("a\nb", render("a\n{% if true %}\nb{% endif %}", Map.of()));          // trim_blocks
        assertEquals("ab", render("a  {%- if true -%}  b  {%- endif %}", Map.of()));
        assertEquals("x\ny\n", render("x\n    {% if true %}\ny\n    {% endif %}\n", Map.of())); // lstrip_blocks
        assertEquals("ab", render("a{# comment #}b", Map.of()));
        assertEquals("  v", render("  {{ 'v' }}", Map.of()));                                 // not for output tags
    }

    @Test
    void expressionsFiltersAndTests() {
        Map<String, Object> ctx = Map.of("xs", List.of(1L, 2L, 3L), "m", Map.of("k", "v"), "s", "  Hi there  ");
        assertEquals("3|1|3|[2, 3]|[3, 2, 1]", render("{{ xs|length }}|{{ xs[0] }}|{{ xs[-1] }}|{{ xs[1:] }}|{{ xs[::-1] }}", ctx));
        assertEquals("Hi there|hi there|True|False", render("{{ s|trim }}|{{ s.strip().lower() }}|{{ 'k' in m }}|{{ 'z' in m }}", ctx));
        assertEquals("a-b|B|c", render("{{ ['a','b']|join('-') }}|{{ 'a,B'.split(',')[1] }}|{{ 'abc'.split('b')[-1] }}", ctx));
        assertEquals("yes|no|7|2.5|1", render("{{ 'yes' if m.k == 'v' else 'no' }}|{{ 'yes' if m.q is defined else 'no' }}|{{ 3 + 4 }}|{{ 5 / 2 }}|{{ 7 // 4 }}", ctx));
        assertEquals("{\"a\": [1, 2], \"b\": null}", render("{{ d|tojson }}", Map.of("d", new java.util.LinkedHashMap<>(Map.of("a", List.of(1L, 2L))) {{ put("b", null); }})));
        assertEquals("dflt|x", render("{{ missing|default('dflt') }}|{{ 'x'|default('y') }}", ctx));
        assertEquals("True|True|False", render("{{ none is none }}|{{ 's' is string }}|{{ xs is mapping }}", ctx));
    }

    @Test
    void loopsScopesNamespacesAndMacros() {
        Map<String, Object> ctx = Map.of("xs", List.of("a", "b", "c"));
        assertEquals("1a,2b,3c.", render("{% for x in xs %}{{ loop.index }}{{ x }}{{ ',' if not loop.last else '.' }}{% endfor %}", ctx));
        assertEquals("outer", render("{% set v = 'outer' %}{% for x in xs %}{% set v = x %}{% endfor %}{{ v }}", ctx));
        assertEquals("c", render("{% set ns = namespace(v='') %}{% for x in xs %}{% set ns.v = x %}{% endfor %}{{ ns.v }}", ctx));
        assertEquals("empty", render("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", ctx));
        assertEquals("ab", render("{% for x in xs %}{% if x == 'c' %}{% break %}{% endif %}{{ x }}{% endfor %}", ctx));
        assertEquals("<b>x</b>", render("{% macro bold(t) %}<b>{{ t }}</b>{% endmacro %}{{ bold('x') }}", ctx));
        assertEquals("k=v;", render("{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}", Map.of("m", Map.of("k", "v"))));
        assertEquals("bc", render("{% for x in xs if x != 'a' %}{{ x }}{% endfor %}", ctx));
    }

    @Test
    void errorsAreClear() {
        assertTrue(assertThrows(TemplateException.class, () -> JinjaTemplate.parse("{% if x %}no end")).getMessage().contains("endif"));
        assertTrue(assertThrows(TemplateException.class, () -> JinjaTemplate.parse("{{ 'open }}")).getMessage().contains("line 1"));
        assertTrue(assertThrows(TemplateException.class, () -> render("{{ raise_exception('boom') }}", Map.of())).getMessage().contains("boom"));
        assertThrows(TemplateException.class, () -> render("{{ x|nosuchfilter }}", Map.of("x", 1L)));
        assertThrows(TemplateException.class, () -> JinjaTemplate.parse("{% frobnicate %}"));
    }

    /**
     * A GGUF's template is untrusted input: loops that print nothing, deep nesting, runaway recursion and string
     * doubling each fail with a TemplateException naming the limit, never hang or overflow the stack. (The time
     * limit only catches a hang.)
     */
    @Test
    void hostileTemplatesFailWithTheLimitNamed() {
        String quiet = "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}";
        String parens = "{{ " + "(".repeat(20_000) + "1" + ")".repeat(20_000) + " }}";
        String blocks = "{% if true %}".repeat(10_000) + "x" + "{% endif %}".repeat(10_000);
        String recursion = "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}";
        String doubling = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}";
        String nots = "{{ " + "not ".repeat(20_000) + "true }}";
        for (String t : List.of(quiet, parens, blocks, recursion, doubling, nots)) {
            TemplateException e = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(30),
                    () -> assertThrows(TemplateException.class, () -> render(t, Map.of())));
            assertTrue(e.getMessage().contains("limit"), e.getMessage());
        }
    }
}
