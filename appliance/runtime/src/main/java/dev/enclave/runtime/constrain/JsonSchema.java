package dev.enclave.runtime.constrain;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The part of JSON Schema that constrained decoding enforces, compiled: objects (properties, required,
 * additionalProperties), arrays (items, minItems, maxItems), strings (with enum), numbers, integers, booleans, null,
 * literal constants and unions (anyOf/oneOf, type lists). Built by the server from the request's schema.
 */
public sealed interface JsonSchema {

    /** Any JSON value. */
    record Any() implements JsonSchema {
    }

    /**
     * @param properties in declaration order (at most 64)
     * @param additional schema of other keys' values, or null when other keys are not allowed
     */
    record Obj(Map<String, JsonSchema> properties, Set<String> required, JsonSchema additional) implements JsonSchema {
        public Obj {
            if (properties.size() > 64) throw new IllegalArgumentException("at most 64 properties per object");
            if (!properties.keySet().containsAll(required)) throw new IllegalArgumentException("required names a property that is not declared");
        }
    }

    record Arr(JsonSchema items, int minItems, int maxItems) implements JsonSchema {
    }

    /** @param values allowed values (enum), or null for any string */
    record Str(List<String> values) implements JsonSchema {
    }

    record Num(boolean integer) implements JsonSchema {
    }

    record Bool() implements JsonSchema {
    }

    record Null() implements JsonSchema {
    }

    /** One exact JSON text (a const or a non-string enum member), e.g. {@code 42} or {@code true}. */
    record Literal(String json) implements JsonSchema {
    }

    record Union(List<JsonSchema> options) implements JsonSchema {
    }
}
