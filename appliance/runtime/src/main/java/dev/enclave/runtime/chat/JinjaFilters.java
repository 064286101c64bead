package dev.enclave.runtime.chat;

import static dev.enclave.runtime.chat.JinjaTemplate.UNDEFINED;
import static dev.enclave.runtime.chat.JinjaTemplate.str;
import static dev.enclave.runtime.chat.JinjaTemplate.truthy;
import static dev.enclave.runtime.chat.JinjaTemplate.typeName;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/** Filters, tests and string/dict/list methods of the Jinja subset, with Python's semantics. */
final class JinjaFilters {

    private JinjaFilters() {
    }

    static Object apply(String name, Object v, List<Object> args, Map<String, Object> kwargs) {
        return switch (name) {
            case "trim" -> str(v).strip();
            case "lower" -> str(v).toLowerCase();
            case "upper" -> str(v).toUpperCase();
            case "capitalize" -> {
                String s = str(v);
                yield s.isEmpty() ? s : s.substring(0, 1).toUpperCase() + s.substring(1).toLowerCase();
            }
            case "title" -> method(str(v), "title", List.of(), Map.of());
            case "string" -> str(v);
            case "safe", "e", "escape" -> v;
            case "length", "count" -> (long) length(v);
            case "first" -> v instanceof List<?> l ? (l.isEmpty() ? UNDEFINED : l.getFirst()) : JinjaTemplate.item(v, 0L);
            case "last" -> v instanceof List<?> l ? (l.isEmpty() ? UNDEFINED : l.getLast()) : JinjaTemplate.item(v, -1L);
            case "join" -> {
                String sep = args.isEmpty() ? "" : str(args.getFirst());
                List<String> parts = new ArrayList<>();
                for (Object o : iterable(v)) parts.add(str(o));
                yield String.join(sep, parts);
            }
            case "default", "d" -> {
                boolean onFalse = args.size() > 1 && truthy(args.get(1)) || truthy(kwargs.getOrDefault("boolean", false));
                Object dflt = args.isEmpty() ? "" : args.getFirst();
                yield (v == UNDEFINED || (onFalse && !truthy(v))) ? dflt : v;
            }
            case "tojson" -> {
                Object indent = kwargs.getOrDefault("indent", args.isEmpty() ? null : args.getFirst());
                yield toJson(v, indent == null ? -1 : (int) JinjaTemplate.toLong(indent));
            }
            case "items" -> {
                if (!(v instanceof Map<?, ?> m)) throw new TemplateException("items needs a mapping, got " + typeName(v));
                List<Object> r = new ArrayList<>();
                m.forEach((k, x) -> r.add(new ArrayList<>(List.of(k, x))));
                yield r;
            }
            case "list" -> new ArrayList<>(iterable(v));
            case "reverse" -> {
                if (v instanceof String s) yield new StringBuilder(s).reverse().toString();
                List<Object> r = new ArrayList<>(iterable(v));
                java.util.Collections.reverse(r);
                yield r;
            }
            case "int" -> {
                try {
                    yield v instanceof String s ? Long.parseLong(s.strip()) : JinjaTemplate.toLong(v);
                } catch (RuntimeException ex) {
                    yield 0L;
                }
            }
            case "float" -> JinjaTemplate.isNumber(v) ? JinjaTemplate.toDouble(v) : Double.parseDouble(str(v).strip());
            case "abs" -> v instanceof Long l ? Math.abs(l) : Math.abs(JinjaTemplate.toDouble(v));
            case "replace" -> str(v).replace(str(args.get(0)), str(args.get(1)));
            case "indent" -> {
                int width = args.isEmpty() ? 4 : (int) JinjaTemplate.toLong(args.getFirst());
                String pad = " ".repeat(width);
                yield str(v).replace("\n", "\n" + pad);
            }
            case "selectattr", "rejectattr" -> {
                boolean select = name.equals("selectattr");
                List<Object> r = new ArrayList<>();
                for (Object o : iterable(v)) {
                    Object a = JinjaTemplate.attr(o, str(args.getFirst()));
                    boolean ok = args.size() > 1 ? test(str(args.get(1)), a, args.subList(2, args.size())) : truthy(a);
                    if (ok == select) r.add(o);
                }
                yield r;
            }
            case "map" -> {
                List<Object> r = new ArrayList<>();
                Object attribute = kwargs.get("attribute");
                for (Object o : iterable(v)) {
                    r.add(attribute != null ? JinjaTemplate.attr(o, str(attribute)) : apply(str(args.getFirst()), o, List.of(), Map.of()));
                }
                yield r;
            }
            case "unique" -> {
                List<Object> r = new ArrayList<>();
                for (Object o : iterable(v)) if (r.stream().noneMatch(x -> JinjaTemplate.equal(x, o))) r.add(o);
                yield r;
            }
            default -> throw new TemplateException("unknown filter '" + name + "'");
        };
    }

    static boolean test(String name, Object v, List<Object> args) {
        return switch (name) {
            case "defined" -> v != UNDEFINED;
            case "undefined" -> v == UNDEFINED;
            case "none" -> v == null;
            case "string" -> v instanceof String;
            case "number" -> v instanceof Long || v instanceof Double;
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "mapping" -> v instanceof Map<?, ?>;
            case "iterable" -> v instanceof Collection<?> || v instanceof Map<?, ?> || v instanceof String;
            case "sequence" -> v instanceof List<?> || v instanceof String;
            case "callable" -> v instanceof JinjaTemplate.Function;
            case "odd" -> JinjaTemplate.toLong(v) % 2 != 0;
            case "even" -> JinjaTemplate.toLong(v) % 2 == 0;
            case "equalto", "eq", "==", "sameas" -> !args.isEmpty() && JinjaTemplate.equal(v, args.getFirst());
            case "ne" -> args.isEmpty() || !JinjaTemplate.equal(v, args.getFirst());
            case "in" -> !args.isEmpty() && args.getFirst() instanceof Collection<?> c && c.stream().anyMatch(x -> JinjaTemplate.equal(x, v));
            default -> throw new TemplateException("unknown test '" + name + "'");
        };
    }

    static Object method(Object self, String name, List<Object> args, Map<String, Object> kwargs) {
        if (self instanceof String s) {
            String chars = args.isEmpty() || args.getFirst() == null ? null : str(args.getFirst());
            return switch (name) {
                case "strip" -> strip(s, chars, true, true);
                case "lstrip" -> strip(s, chars, true, false);
                case "rstrip" -> strip(s, chars, false, true);
                case "upper" -> s.toUpperCase();
                case "lower" -> s.toLowerCase();
                case "startswith" -> startsOrEnds(s, args.getFirst(), true);
                case "endswith" -> startsOrEnds(s, args.getFirst(), false);
                case "replace" -> s.replace(str(args.get(0)), str(args.get(1)));
                case "split" -> split(s, chars, args.size() > 1 ? (int) JinjaTemplate.toLong(args.get(1)) : -1);
                case "find" -> (long) s.indexOf(str(args.getFirst()));
                case "count" -> (long) (s.isEmpty() ? 0 : (s.length() - s.replace(str(args.getFirst()), "").length()) / Math.max(1, str(args.getFirst()).length()));
                case "title" -> {
                    StringBuilder sb = new StringBuilder();
                    boolean up = true;
                    for (char c : s.toCharArray()) {
                        sb.append(up ? Character.toUpperCase(c) : Character.toLowerCase(c));
                        up = !Character.isLetter(c);
                    }
                    yield sb.toString();
                }
                case "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase() + s.substring(1).toLowerCase();
                case "format" -> {
                    String r = s;
                    for (Object a : args) r = r.replaceFirst("%s|\\{\\}", java.util.regex.Matcher.quoteReplacement(str(a)));
                    yield r;
                }
                default -> throw new TemplateException("unknown string method '" + name + "'");
            };
        }
        if (self instanceof Map<?, ?> m) {
            return switch (name) {
                case "items" -> apply("items", m, List.of(), Map.of());
                case "keys" -> new ArrayList<>(m.keySet());
                case "values" -> new ArrayList<>(m.values());
                case "get" -> {
                    Object k = str(args.getFirst());
                    yield m.containsKey(k) ? m.get(k) : (args.size() > 1 ? args.get(1) : null);
                }
                default -> throw new TemplateException("unknown mapping method '" + name + "'");
            };
        }
        if (self instanceof List<?> l) {
            @SuppressWarnings("unchecked")
            List<Object> list = (List<Object>) l;
            return switch (name) {
                case "append" -> {
                    list.add(args.getFirst());
                    yield null;
                }
                case "index" -> (long) list.indexOf(args.getFirst());
                default -> throw new TemplateException("unknown list method '" + name + "'");
            };
        }
        throw new TemplateException("cannot call '" + name + "' on " + typeName(self));
    }

    private static boolean startsOrEnds(String s, Object prefix, boolean start) {
        if (prefix instanceof List<?> options) {
            for (Object o : options) if (start ? s.startsWith(str(o)) : s.endsWith(str(o))) return true;
            return false;
        }
        return start ? s.startsWith(str(prefix)) : s.endsWith(str(prefix));
    }

    static String strip(String s, String chars, boolean left, boolean right) {
        int a = 0, b = s.length();
        if (left) while (a < b && (chars == null ? Character.isWhitespace(s.charAt(a)) : chars.indexOf(s.charAt(a)) >= 0)) a++;
        if (right) while (b > a && (chars == null ? Character.isWhitespace(s.charAt(b - 1)) : chars.indexOf(s.charAt(b - 1)) >= 0)) b--;
        return s.substring(a, b);
    }

    private static List<Object> split(String s, String sep, int max) {
        List<Object> r = new ArrayList<>();
        if (sep == null) {
            for (String part : s.strip().split("\\s+", max < 0 ? 0 : max + 1)) if (!part.isEmpty()) r.add(part);
            return r;
        }
        if (sep.isEmpty()) throw new TemplateException("empty separator");
        int from = 0;
        while (max < 0 || r.size() < max) {
            int i = s.indexOf(sep, from);
            if (i < 0) break;
            r.add(s.substring(from, i));
            from = i + sep.length();
        }
        r.add(s.substring(from));
        return r;
    }

    private static int length(Object v) {
        if (v instanceof String s) return s.codePointCount(0, s.length());
        if (v instanceof Collection<?> c) return c.size();
        if (v instanceof Map<?, ?> m) return m.size();
        if (v == UNDEFINED || v == null) return 0;
        throw new TemplateException("object of type " + typeName(v) + " has no length");
    }

    private static List<Object> iterable(Object v) {
        if (v instanceof Collection<?> c) return new ArrayList<>(c);
        if (v instanceof Map<?, ?> m) return new ArrayList<>(m.keySet());
        if (v instanceof String s) {
            List<Object> r = new ArrayList<>();
            s.codePoints().forEach(cp -> r.add(new String(Character.toChars(cp))));
            return r;
        }
        if (v == UNDEFINED || v == null) return List.of();
        throw new TemplateException(typeName(v) + " is not iterable");
    }

    /** Python's json.dumps(v, ensure_ascii=False, indent=indent): ", " / ": " separators, or newlines when indented. */
    static String toJson(Object v, int indent) {
        StringBuilder sb = new StringBuilder();
        writeJson(sb, v, indent, 0);
        return sb.toString();
    }

    private static void writeJson(StringBuilder sb, Object v, int indent, int depth) {
        if (v == null || v == UNDEFINED) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Long || v instanceof Integer) {
            sb.append(v);
        } else if (v instanceof Double d) {
            sb.append(d.isNaN() ? "NaN" : d.isInfinite() ? (d > 0 ? "Infinity" : "-Infinity") : str(d));
        } else if (v instanceof String s) {
            quote(sb, s);
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                sb.append("{}");
                return;
            }
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) sb.append(indent >= 0 ? "," : ", ");
                first = false;
                newline(sb, indent, depth + 1);
                quote(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                writeJson(sb, e.getValue(), indent, depth + 1);
            }
            newline(sb, indent, depth);
            sb.append('}');
        } else if (v instanceof Collection<?> c) {
            if (c.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            boolean first = true;
            for (Object o : c) {
                if (!first) sb.append(indent >= 0 ? "," : ", ");
                first = false;
                newline(sb, indent, depth + 1);
                writeJson(sb, o, indent, depth + 1);
            }
            newline(sb, indent, depth);
            sb.append(']');
        } else {
            quote(sb, String.valueOf(v));
        }
    }

    private static void newline(StringBuilder sb, int indent, int depth) {
        if (indent >= 0) sb.append('\n').append(" ".repeat(indent * depth));
    }

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        sb.append('"');
    }

    /** Python's repr of lists and dicts (for printing them directly). */
    static String pyRepr(Object v) {
        if (v instanceof String s) return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
        if (v instanceof List<?> l) {
            List<String> parts = new ArrayList<>();
            for (Object o : l) parts.add(pyRepr(o));
            return "[" + String.join(", ", parts) + "]";
        }
        if (v instanceof Map<?, ?> m) {
            List<String> parts = new ArrayList<>();
            m.forEach((k, x) -> parts.add(pyRepr(k) + ": " + pyRepr(x)));
            return "{" + String.join(", ", parts) + "}";
        }
        return str(v);
    }
}
