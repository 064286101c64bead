package dev.enclave.runtime.constrain;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * An incremental, schema-aware JSON recogniser over bytes. A state is immutable (a small frame plus a link to the
 * frame that continues once the current value is complete), so trying a token is just folding its bytes from the
 * current state — nothing to copy back. Unions keep several states alive at once.
 */
final class JsonSchemaMachine {

    private JsonSchemaMachine() {
    }

    /** A parser state; {@link #next} returns the states after one byte (empty when the byte is not allowed). */
    abstract static sealed class State permits ValueStart, Done, End, AfterSpace, ObjKey, KeyString, Colon, ObjAfter, ArrStart, ArrAfter,
            StringBody, NumberBody, LiteralBody {
        final State cont; // where to go when this value is complete (null for End)

        State(State cont) {
            this.cont = cont;
        }

        abstract void next(int c, List<State> out);

        boolean complete() {
            return false;
        }
    }

    static State start(JsonSchema schema) {
        return new ValueStart(schema, new End());
    }

    static boolean ws(int c) {
        return c == ' ' || c == '\n' || c == '\r' || c == '\t';
    }

    /** The value is complete: hand over to the continuation. */
    static void done(State cont, int c, List<State> out) {
        cont.next(c, out);
    }

    /** Waiting for a value of {@code schema}. */
    static final class ValueStart extends State {
        final JsonSchema schema;

        ValueStart(JsonSchema schema, State cont) {
            super(cont);
            this.schema = schema;
        }

        @Override
        void next(int c, List<State> out) {
            if (ws(c)) {
                if (!(cont instanceof End)) out.add(new AfterSpace(this)); // a document starts at its first byte
                return;
            }
            switch (schema) {
                case JsonSchema.Union u -> {
                    for (JsonSchema o : u.options()) new ValueStart(o, cont).next(c, out);
                }
                case JsonSchema.Any a -> {
                    if (c == '{') out.add(new ObjKey(new JsonSchema.Obj(Map.of(), java.util.Set.of(), a), 0L, true, cont));
                    else if (c == '[') out.add(new ArrStart(new JsonSchema.Arr(a, 0, Integer.MAX_VALUE), 0, cont));
                    else if (c == '"') out.add(new StringBody(null, "", 0, cont));
                    else if (c == '-' || (c >= '0' && c <= '9')) NumberBody.begin(false, c, cont, out);
                    else if (c == 't') out.add(new LiteralBody("true", 1, cont));
                    else if (c == 'f') out.add(new LiteralBody("false", 1, cont));
                    else if (c == 'n') out.add(new LiteralBody("null", 1, cont));
                }
                case JsonSchema.Obj o -> {
                    if (c == '{') out.add(new ObjKey(o, 0L, true, cont));
                }
                case JsonSchema.Arr a -> {
                    if (c == '[') out.add(new ArrStart(a, 0, cont));
                }
                case JsonSchema.Str s -> {
                    if (c == '"') out.add(new StringBody(s.values(), "", 0, cont));
                }
                case JsonSchema.Num n -> {
                    if (c == '-' || (c >= '0' && c <= '9')) NumberBody.begin(n.integer(), c, cont, out);
                }
                case JsonSchema.Bool b -> {
                    if (c == 't') out.add(new LiteralBody("true", 1, cont));
                    else if (c == 'f') out.add(new LiteralBody("false", 1, cont));
                }
                case JsonSchema.Null n -> {
                    if (c == 'n') out.add(new LiteralBody("null", 1, cont));
                }
                case JsonSchema.Literal l -> {
                    if (l.json().charAt(0) == c) {
                        if (l.json().length() == 1) {
                            // a one-character literal (a digit) behaves like a number that may end here
                            out.add(new LiteralBody(l.json(), 1, cont));
                        } else {
                            out.add(new LiteralBody(l.json(), 1, cont));
                        }
                    }
                }
            }
        }
    }

    /** The document is complete; only whitespace may follow. */
    static final class End extends State {
        End() {
            super(null);
        }

        @Override
        void next(int c, List<State> out) {
            // nothing after the document: generation ends there
        }

        @Override
        boolean complete() {
            return true;
        }
    }

    /**
     * Between tokens of the document at most one whitespace character: like llama.cpp's JSON grammar, this stops a
     * model that likes padding from filling its whole budget with spaces.
     */
    static final class AfterSpace extends State {
        final State inner;

        AfterSpace(State inner) {
            super(inner.cont);
            this.inner = inner;
        }

        @Override
        void next(int c, List<State> out) {
            if (!ws(c)) inner.next(c, out);
        }

        @Override
        boolean complete() {
            return inner.complete();
        }
    }

    /** A finished value whose continuation has not seen the next byte yet (numbers and literals end implicitly). */
    static final class Done extends State {
        Done(State cont) {
            super(cont);
        }

        @Override
        void next(int c, List<State> out) {
            cont.next(c, out);
        }

        @Override
        boolean complete() {
            return cont instanceof End;
        }
    }

    /** Inside an object, expecting a key (or '}' when allowed). */
    static final class ObjKey extends State {
        final JsonSchema.Obj obj;
        final long seen;
        final boolean first;

        ObjKey(JsonSchema.Obj obj, long seen, boolean first, State cont) {
            super(cont);
            this.obj = obj;
            this.seen = seen;
            this.first = first;
        }

        @Override
        void next(int c, List<State> out) {
            if (ws(c)) out.add(new AfterSpace(this));
            else if (c == '"') out.add(new KeyString(obj, seen, "", cont));
            else if (c == '}' && first && requiredMet(obj, seen)) out.add(new Done(cont));
        }
    }

    static boolean requiredMet(JsonSchema.Obj obj, long seen) {
        int i = 0;
        for (String k : obj.properties().keySet()) {
            if (obj.required().contains(k) && (seen & (1L << i)) == 0) return false;
            i++;
        }
        return true;
    }

    static int propertyIndex(JsonSchema.Obj obj, String key) {
        int i = 0;
        for (String k : obj.properties().keySet()) {
            if (k.equals(key)) return i;
            i++;
        }
        return -1;
    }

    /** A key being written: it must stay a prefix of an allowed, not yet used key (or any key if others are allowed). */
    static final class KeyString extends State {
        final JsonSchema.Obj obj;
        final long seen;
        final String key;

        KeyString(JsonSchema.Obj obj, long seen, String key, State cont) {
            super(cont);
            this.obj = obj;
            this.seen = seen;
            this.key = key;
        }

        @Override
        void next(int c, List<State> out) {
            if (c == '"') {
                int idx = propertyIndex(obj, key);
                if (idx >= 0 && (seen & (1L << idx)) == 0) {
                    out.add(new Colon(obj, seen | (1L << idx), obj.properties().get(key), cont));
                } else if (idx < 0 && obj.additional() != null && !key.isEmpty()) {
                    out.add(new Colon(obj, seen, obj.additional(), cont));
                }
                return;
            }
            if (c < 0x20 || c == '\\') return; // keys are plain text (no escapes)
            String k = key + (char) c; // bytes as chars: keys compare byte-wise
            if (obj.additional() != null) {
                out.add(new KeyString(obj, seen, k, cont));
                return;
            }
            int i = 0;
            for (String p : obj.properties().keySet()) {
                if ((seen & (1L << i)) == 0 && latin1(p).startsWith(k)) {
                    out.add(new KeyString(obj, seen, k, cont));
                    return;
                }
                i++;
            }
        }
    }

    /** A string's UTF-8 bytes as one char per byte, to compare with byte-wise prefixes. */
    static String latin1(String s) {
        return new String(s.getBytes(java.nio.charset.StandardCharsets.UTF_8), java.nio.charset.StandardCharsets.ISO_8859_1);
    }

    static final class Colon extends State {
        final JsonSchema.Obj obj;
        final long seen;
        final JsonSchema value;

        Colon(JsonSchema.Obj obj, long seen, JsonSchema value, State cont) {
            super(cont);
            this.obj = obj;
            this.seen = seen;
            this.value = value;
        }

        @Override
        void next(int c, List<State> out) {
            if (ws(c)) out.add(new AfterSpace(this));
            else if (c == ':') out.add(new ValueStart(value, new ObjAfter(obj, seen, cont)));
        }
    }

    /** After a member's value: ',' for another key (if any may follow) or '}' (if every required key is there). */
    static final class ObjAfter extends State {
        final JsonSchema.Obj obj;
        final long seen;

        ObjAfter(JsonSchema.Obj obj, long seen, State cont) {
            super(cont);
            this.obj = obj;
            this.seen = seen;
        }

        @Override
        void next(int c, List<State> out) {
            if (ws(c)) {
                out.add(new AfterSpace(this));
            } else if (c == ',') {
                boolean more = obj.additional() != null || Long.bitCount(seen) < obj.properties().size();
                if (more) out.add(new ObjKey(obj, seen, false, cont));
            } else if (c == '}' && requiredMet(obj, seen)) {
                out.add(new Done(cont));
            }
        }
    }

    static final class ArrStart extends State {
        final JsonSchema.Arr arr;
        final int count;

        ArrStart(JsonSchema.Arr arr, int count, State cont) {
            super(cont);
            this.arr = arr;
            this.count = count;
        }

        @Override
        void next(int c, List<State> out) {
            if (ws(c)) {
                out.add(new AfterSpace(this));
            } else if (c == ']' && count == 0 && arr.minItems() == 0) {
                out.add(new Done(cont));
            } else if (count < arr.maxItems()) {
                new ValueStart(arr.items(), new ArrAfter(arr, count + 1, cont)).next(c, out);
            }
        }
    }

    static final class ArrAfter extends State {
        final JsonSchema.Arr arr;
        final int count;

        ArrAfter(JsonSchema.Arr arr, int count, State cont) {
            super(cont);
            this.arr = arr;
            this.count = count;
        }

        @Override
        void next(int c, List<State> out) {
            if (ws(c)) out.add(new AfterSpace(this));
            else if (c == ',' && count < arr.maxItems()) out.add(new ValueStart(arr.items(), new ArrAfter(arr, count + 1, cont)));
            else if (c == ']' && count >= arr.minItems()) out.add(new Done(cont));
        }
    }

    /** A string value. With an enum, the text must stay a prefix of one of the values (no escapes then). */
    static final class StringBody extends State {
        final List<String> values;
        final String text;   // only kept for enums
        final int escape;    // 0 none, 1 after '\', 2..5 inside \\uXXXX, 6..8 owed UTF-8 continuation bytes (1..3)

        StringBody(List<String> values, String text, int escape, State cont) {
            super(cont);
            this.values = values;
            this.text = text;
            this.escape = escape;
        }

        @Override
        void next(int c, List<State> out) {
            if (values != null) {
                if (c == '"') {
                    for (String v : values) if (latin1(v).equals(text)) { out.add(new Done(cont)); return; }
                    return;
                }
                if (c < 0x20 || c == '\\') return;
                String t = text + (char) c;
                for (String v : values) if (latin1(v).startsWith(t)) { out.add(new StringBody(values, t, 0, cont)); return; }
                return;
            }
            if (escape == 1) {
                if ("\"\\/bfnrt".indexOf(c) >= 0) out.add(new StringBody(null, "", 0, cont));
                else if (c == 'u') out.add(new StringBody(null, "", 2, cont));
                return;
            }
            if (escape >= 2 && escape <= 5) {
                boolean hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
                if (hex) out.add(new StringBody(null, "", escape == 5 ? 0 : escape + 1, cont));
                return;
            }
            // escape codes 6..8: that many UTF-8 continuation bytes still owed; 9..12: the first continuation of
            // E0, ED, F0, F4 lead bytes, whose range is narrower (no overlongs, no surrogates, nothing past U+10FFFF)
            if (escape >= 6) {
                int lo = 0x80, hi = 0xBF, then = escape - 1;
                switch (escape) {
                    case 9 -> { lo = 0xA0; then = 6; }
                    case 10 -> { hi = 0x9F; then = 6; }
                    case 11 -> { lo = 0x90; then = 7; }
                    case 12 -> { hi = 0x8F; then = 7; }
                    default -> { }
                }
                if (c >= lo && c <= hi) out.add(new StringBody(null, "", then == 5 ? 0 : then, cont));
                return;
            }
            if (c == '"') out.add(new Done(cont));
            else if (c == '\\') out.add(new StringBody(null, "", 1, cont));
            else if (c >= 0x20 && c < 0x80) out.add(this.escape == 0 && this.text.isEmpty() ? this : new StringBody(null, "", 0, cont));
            else if (c >= 0xC2 && c <= 0xDF) out.add(new StringBody(null, "", 6, cont));
            else if (c == 0xE0) out.add(new StringBody(null, "", 9, cont));
            else if (c == 0xED) out.add(new StringBody(null, "", 10, cont));
            else if (c >= 0xE1 && c <= 0xEF) out.add(new StringBody(null, "", 7, cont));
            else if (c == 0xF0) out.add(new StringBody(null, "", 11, cont));
            else if (c == 0xF4) out.add(new StringBody(null, "", 12, cont));
            else if (c >= 0xF1 && c <= 0xF3) out.add(new StringBody(null, "", 8, cont));
        }
    }

    /** A number (JSON grammar; integers refuse '.', 'e'); it ends at the first byte that cannot continue it. */
    static final class NumberBody extends State {
        static final int SIGN = 0, ZERO = 1, INT = 2, DOT = 3, FRAC = 4, E = 5, ESIGN = 6, EXP = 7;
        final boolean integer;
        final int st;

        NumberBody(boolean integer, int st, State cont) {
            super(cont);
            this.integer = integer;
            this.st = st;
        }

        static void begin(boolean integer, int c, State cont, List<State> out) {
            out.add(new NumberBody(integer, c == '-' ? SIGN : c == '0' ? ZERO : INT, cont));
        }

        boolean terminal() {
            return st == ZERO || st == INT || st == FRAC || st == EXP;
        }

        @Override
        void next(int c, List<State> out) {
            boolean digit = c >= '0' && c <= '9';
            int n = -1;
            switch (st) {
                case SIGN -> n = c == '0' ? ZERO : digit ? INT : -1;
                case ZERO -> n = c == '.' && !integer ? DOT : (c == 'e' || c == 'E') && !integer ? E : -1;
                case INT -> n = digit ? INT : c == '.' && !integer ? DOT : (c == 'e' || c == 'E') && !integer ? E : -1;
                case DOT -> n = digit ? FRAC : -1;
                case FRAC -> n = digit ? FRAC : (c == 'e' || c == 'E') ? E : -1;
                case E -> n = c == '+' || c == '-' ? ESIGN : digit ? EXP : -1;
                case ESIGN, EXP -> n = digit ? EXP : -1;
                default -> { }
            }
            if (n >= 0) {
                out.add(n == st ? this : new NumberBody(integer, n, cont));
            } else if (terminal()) {
                cont.next(c, out); // the number ended; this byte belongs to what follows
            }
        }

        @Override
        boolean complete() {
            return terminal() && cont instanceof End;
        }
    }

    /** An exact text: true, false, null, or a const/enum member such as 42. */
    static final class LiteralBody extends State {
        final String text;
        final int at;

        LiteralBody(String text, int at, State cont) {
            super(cont);
            this.text = text;
            this.at = at;
        }

        @Override
        void next(int c, List<State> out) {
            if (at < text.length()) {
                if (text.charAt(at) == c) out.add(at + 1 == text.length() ? new Done(cont) : new LiteralBody(text, at + 1, cont));
            }
        }
    }

    /** Folds bytes through a set of states. */
    static List<State> feed(List<State> states, byte[] bytes) {
        List<State> cur = states;
        for (byte b : bytes) {
            List<State> next = new ArrayList<>(Math.max(2, cur.size()));
            for (State s : cur) s.next(b & 0xFF, next);
            if (next.isEmpty()) return next;
            cur = next.size() > 16 ? dedupe(next) : next;
        }
        return cur;
    }

    private static List<State> dedupe(List<State> states) {
        return new ArrayList<>(new java.util.LinkedHashSet<>(states));
    }

    static boolean anyComplete(List<State> states) {
        for (State s : states) if (s.complete()) return true;
        return false;
    }
}
