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
 */
final class SchemaCompiler {

    private static final Set<String> IGNORED = Set.of("title", "description", "examples", "default", "format", "$schema",
            "$id", "$comment", "$defs", "definitions", "deprecated", "readOnly", "writeOnly");
    private static final Set<String> KNOWN = Set.of("type", "properties", "required", "additionalProperties", "items",
            "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "$ref");

    private final JsonNode root;
    private int depth;

    private SchemaCompiler(JsonNode root) {
        this.root = root;
    }

    static JsonSchema compile(JsonNode schema) {
        if (schema == null || !schema.isObject()) throw bad("json_schema.schema must be a JSON Schema object");
        return new SchemaCompiler(schema).node(schema, "#");
    }

    private JsonSchema node(JsonNode s, String where) {
        if (++depth > 32) throw bad("the schema nests deeper than 32 levels (recursive $ref?) at " + where);
        try {
            if (s.isBoolean()) return s.asBoolean() ? new JsonSchema.Any() : fail(where + " is false: nothing is valid");
            if (!s.isObject()) throw bad(where + " must be an object");
            var names = s.fieldNames();
            while (names.hasNext()) {
                String k = names.next();
                if (!KNOWN.contains(k) && !IGNORED.contains(k)) throw bad("schema keyword '" + k + "' at " + where + " is not supported");
            }
            if (s.has("$ref")) return node(resolve(s.get("$ref").asText(), where), s.get("$ref").asText());
            if (s.has("const")) return literal(s.get("const"));
            if (s.has("enum")) {
                JsonNode e = s.get("enum");
                if (!e.isArray() || e.isEmpty()) throw bad("enum at " + where + " must be a non-empty array");
                List<String> strings = new ArrayList<>();
                List<JsonSchema> others = new ArrayList<>();
                for (JsonNode v : e) {
                    if (v.isTextual()) strings.add(v.asText());
                    else others.add(literal(v));
                }
                if (!strings.isEmpty()) others.add(new JsonSchema.Str(strings));
                return others.size() == 1 ? others.getFirst() : new JsonSchema.Union(others);
            }
            for (String u : new String[] {"anyOf", "oneOf"}) {
                if (s.has(u)) {
                    List<JsonSchema> opts = new ArrayList<>();
                    int i = 0;
                    for (JsonNode o : s.get(u)) opts.add(node(o, where + "/" + u + "/" + i++));
                    if (opts.isEmpty()) throw bad(u + " at " + where + " is empty");
                    return opts.size() == 1 ? opts.getFirst() : new JsonSchema.Union(opts);
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
                return opts.size() == 1 ? opts.getFirst() : new JsonSchema.Union(opts);
            }
            return typed(type.asText(), s, where);
        } finally {
            depth--;
        }
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
        JsonSchema items = s.has("items") ? node(s.get("items"), where + "/items") : new JsonSchema.Any();
        int min = s.path("minItems").asInt(0);
        int max = s.has("maxItems") ? s.get("maxItems").asInt() : Integer.MAX_VALUE;
        if (min < 0 || max < min) throw bad("minItems/maxItems at " + where + " are inconsistent");
        return new JsonSchema.Arr(items, min, max);
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
