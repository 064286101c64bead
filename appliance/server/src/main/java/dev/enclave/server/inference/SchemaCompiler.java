package dev.enclave.server.inference;

import com.fasterxml.jackson.databind.JsonNode;
import dev.enclave.runtime.constrain.JsonSchema;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Compiles a request's JSON Schema into what constrained decoding enforces. Supported: type (one or a list),
 * properties, required, additionalProperties (boolean or schema), items, minItems, maxItems, enum, const,
 * anyOf/oneOf, and local {@code $ref} to {@code #/$defs/...} or {@code #/definitions/...} (not recursive).
 * Anything else that would change which documents are valid is refused with its name, rather than silently
 * ignored; annotations (title, description, examples, default, format) are accepted and ignored.
 *
 * <p>Bounded, because a schema is the client's to choose and its cost is everyone's (the mask runs on the
 * scheduler's thread between all sequences' steps): each {@code $ref} target is compiled once (a kilobyte of
 * {@code $defs} fanning out through {@code anyOf} would otherwise expand exponentially), nested unions are
 * flattened, and a schema is refused, naming the limit, when it compiles to more than {@value #MAX_NODES} nodes,
 * a union has more than {@value #MAX_ALTERNATIVES} alternatives, or a document could be read more than
 * {@value #MAX_PARSES} ways at once (the number of parser states the mask tries every token against).
 */
final class SchemaCompiler {

    private static final Set<String> IGNORED = Set.of("title", "description", "examples", "default", "format", "$schema",
            "$id", "$comment", "$defs", "definitions", "deprecated", "readOnly", "writeOnly");
    private static final Set<String> KNOWN = Set.of("type", "properties", "required", "additionalProperties", "items",
            "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "$ref");

    static final int MAX_NODES = 2000;
    static final int MAX_ALTERNATIVES = 64;
    static final int MAX_PARSES = 128;
    static final int MAX_DEPTH = 32;
    static final int MAX_ENUM = 1024;

    private final JsonNode root;
    private int depth;
    private int nodes;
    /** $ref targets compiled so far: each is compiled once and shared */
    private final Map<String, JsonSchema> refs = new java.util.HashMap<>();
    private final Set<String> resolving = new java.util.HashSet<>();

    private SchemaCompiler(JsonNode root) {
        this.root = root;
    }

    static JsonSchema compile(JsonNode schema) {
        if (schema == null || !schema.isObject()) throw bad("json_schema.schema must be a JSON Schema object");
        JsonSchema compiled = new SchemaCompiler(schema).node(schema, "#");
        long parses = parses(compiled, new java.util.IdentityHashMap<>());
        if (parses > MAX_PARSES) {
            throw bad("the schema is too ambiguous: a document could be read " + (parses >= Long.MAX_VALUE / 2 ? "an unbounded number of" : parses)
                    + " ways at once (limit " + MAX_PARSES + "): nest fewer anyOf/oneOf alternatives");
        }
        return compiled;
    }

    /**
     * How many parser states one position of a document can have at most: a union adds its alternatives' counts
     * (each may still be open around the value being read), a container takes its most ambiguous child's.
     */
    private static long parses(JsonSchema s, java.util.IdentityHashMap<JsonSchema, Long> memo) {
        Long known = memo.get(s);
        if (known != null) return known;
        long n = switch (s) {
            case JsonSchema.Union u -> {
                long sum = 0;
                for (JsonSchema o : u.options()) sum = Math.min(Long.MAX_VALUE / 2, sum + parses(o, memo));
                yield sum;
            }
            case JsonSchema.Obj o -> {
                long inner = 1;
                for (JsonSchema p : o.properties().values()) inner = Math.max(inner, parses(p, memo));
                if (o.additional() != null) inner = Math.max(inner, parses(o.additional(), memo));
                yield inner;
            }
            case JsonSchema.Arr a -> parses(a.items(), memo);
            default -> 1L;
        };
        memo.put(s, n);
        return n;
    }

    private JsonSchema node(JsonNode s, String where) {
        if (++nodes > MAX_NODES) throw bad("the schema compiles to more than " + MAX_NODES + " nodes (limit)");
        {
            if (s.isBoolean()) return s.asBoolean() ? new JsonSchema.Any() : fail(where + " is false: nothing is valid");
            if (!s.isObject()) throw bad(where + " must be an object");
            var names = s.fieldNames();
            while (names.hasNext()) {
                String k = names.next();
                if (!KNOWN.contains(k) && !IGNORED.contains(k)) throw bad("schema keyword '" + k + "' at " + where + " is not supported");
            }
            if (s.has("$ref")) return ref(s.get("$ref").asText(), where);
            if (s.has("const")) return literal(s.get("const"));
            if (s.has("enum")) {
                JsonNode e = s.get("enum");
                if (!e.isArray() || e.isEmpty()) throw bad("enum at " + where + " must be a non-empty array");
                if (e.size() > MAX_ENUM) throw bad("enum at " + where + " has more than " + MAX_ENUM + " values (limit)");
                List<String> strings = new ArrayList<>();
                List<JsonSchema> others = new ArrayList<>();
                for (JsonNode v : e) {
                    if (v.isTextual()) strings.add(v.asText());
                    else others.add(literal(v));
                }
                if (!strings.isEmpty()) others.add(new JsonSchema.Str(strings));
                return union(others, where);
            }
            for (String u : new String[] {"anyOf", "oneOf"}) {
                if (s.has(u)) {
                    List<JsonSchema> opts = new ArrayList<>();
                    int i = 0;
                    for (JsonNode o : s.get(u)) opts.add(node(o, where + "/" + u + "/" + i++));
                    if (opts.isEmpty()) throw bad(u + " at " + where + " is empty");
                    return union(opts, where);
                }
            }
            JsonNode type = s.get("type");
            if (type == null) {
                if (s.has("properties")) return object(s, where);
                if (s.has("items")) return array(s, where);
                return new JsonSchema.Any();
            }
            if (type.isArray()) {
                List<JsonSchema> opts = new ArrayList<>();
                for (JsonNode t : type) opts.add(typed(t.asText(), s, where));
                if (opts.isEmpty()) throw bad("type at " + where + " is an empty list");
                return union(opts, where);
            }
            return typed(type.asText(), s, where);
        }
    }

    /** Objects and arrays nest documents (references and unions do not). */
    private void enter(String where) {
        if (++depth > MAX_DEPTH) throw bad("documents of this schema nest deeper than " + MAX_DEPTH + " levels at " + where + " (limit)");
    }

    private JsonSchema typed(String type, JsonNode s, String where) {
        return switch (type) {
            case "object" -> object(s, where);
            case "array" -> array(s, where);
            case "string" -> new JsonSchema.Str(null);
            case "number" -> new JsonSchema.Num(false);
            case "integer" -> new JsonSchema.Num(true);
            case "boolean" -> new JsonSchema.Bool();
            case "null" -> new JsonSchema.Null();
            default -> throw bad("type '" + type + "' at " + where + " is not a JSON Schema type");
        };
    }

    private JsonSchema object(JsonNode s, String where) {
        enter(where);
        try {
            return objectBody(s, where);
        } finally {
            depth--;
        }
    }

    private JsonSchema objectBody(JsonNode s, String where) {
        Map<String, JsonSchema> props = new LinkedHashMap<>();
        JsonNode p = s.get("properties");
        if (p != null) {
            var it = p.fields();
            while (it.hasNext()) {
                var e = it.next();
                props.put(e.getKey(), node(e.getValue(), where + "/properties/" + e.getKey()));
            }
        }
        if (props.size() > 64) throw bad("at most 64 properties per object (" + where + ")");
        Set<String> required = new LinkedHashSet<>();
        if (s.has("required")) for (JsonNode r : s.get("required")) required.add(r.asText());
        for (String r : required) if (!props.containsKey(r)) throw bad("required property '" + r + "' is not declared at " + where);
        JsonNode ap = s.get("additionalProperties");
        // like OpenAI's strict mode, an object without properties takes any keys; one with properties takes only those
        JsonSchema additional = ap == null ? (props.isEmpty() ? new JsonSchema.Any() : null)
                : ap.isBoolean() ? (ap.asBoolean() ? new JsonSchema.Any() : null) : node(ap, where + "/additionalProperties");
        return new JsonSchema.Obj(props, required, additional);
    }

    private JsonSchema array(JsonNode s, String where) {
        enter(where);
        JsonSchema items;
        try {
            items = s.has("items") ? node(s.get("items"), where + "/items") : new JsonSchema.Any();
        } finally {
            depth--;
        }
        int min = s.path("minItems").asInt(0);
        int max = s.has("maxItems") ? s.get("maxItems").asInt() : Integer.MAX_VALUE;
        if (min < 0 || max < min) throw bad("minItems/maxItems at " + where + " are inconsistent");
        return new JsonSchema.Arr(items, min, max);
    }

    /** One union of the alternatives, nested unions flattened and repeated alternatives (the same node) dropped. */
    private static JsonSchema union(List<JsonSchema> options, String where) {
        // containers by identity (hashing a shared tree deeply would itself be exponential), scalars by value
        java.util.Set<JsonSchema> containers = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        java.util.Set<JsonSchema> scalars = new java.util.HashSet<>();
        List<JsonSchema> out = new ArrayList<>();
        for (JsonSchema o : options) {
            for (JsonSchema leaf : o instanceof JsonSchema.Union u ? u.options() : List.of(o)) {
                boolean container = leaf instanceof JsonSchema.Obj || leaf instanceof JsonSchema.Arr;
                if (container ? containers.add(leaf) : scalars.add(leaf)) out.add(leaf);
            }
        }
        if (out.size() > MAX_ALTERNATIVES) {
            throw bad("anyOf/oneOf/enum at " + where + " has more than " + MAX_ALTERNATIVES + " alternatives (limit)");
        }
        return out.size() == 1 ? out.getFirst() : new JsonSchema.Union(List.copyOf(out));
    }

    /** A $ref, compiled once however often it is used. */
    private JsonSchema ref(String ref, String where) {
        JsonSchema done = refs.get(ref);
        if (done != null) return done;
        if (!resolving.add(ref)) throw bad("$ref " + ref + " at " + where + " is recursive, which is not supported");
        try {
            JsonSchema compiled = node(resolve(ref, where), ref);
            refs.put(ref, compiled);
            return compiled;
        } finally {
            resolving.remove(ref);
        }
    }

    private JsonNode resolve(String ref, String where) {
        for (String prefix : new String[] {"#/$defs/", "#/definitions/"}) {
            if (ref.startsWith(prefix)) {
                JsonNode target = root.path(prefix.substring(2, prefix.length() - 1)).path(ref.substring(prefix.length()));
                if (target.isMissingNode()) throw bad("$ref " + ref + " at " + where + " points nowhere");
                return target;
            }
        }
        if (ref.equals("#")) return root;
        throw bad("$ref " + ref + " at " + where + ": only local #/$defs/... references are supported");
    }

    private static JsonSchema literal(JsonNode v) {
        if (v.isTextual()) return new JsonSchema.Str(List.of(v.asText()));
        if (v.isContainerNode()) throw bad("const/enum values must be strings, numbers, booleans or null");
        return new JsonSchema.Literal(v.toString());
    }

    private static JsonSchema fail(String msg) {
        throw bad(msg);
    }

    private static ApiException bad(String msg) {
        return ApiException.invalid("response_format", msg);
    }
}
