package dev.enclave.runtime.constrain;

/**
 * Accepts bytes one at a time and says whether everything so far can still be the beginning of one JSON object
 * (RFC 8259, with whitespace between tokens). Used to constrain decoding: a token is allowed only if all its bytes
 * are accepted. The state is a few ints and a nesting stack, so trying a token is a copy and a loop, no allocation.
 */
public final class JsonPrefixMachine {

    static final int MAX_DEPTH = 64;

    // modes
    private static final int VALUE = 0, OBJ_FIRST_KEY = 1, OBJ_KEY = 2, COLON = 3, AFTER_VALUE = 4, STRING = 5,
            NUMBER = 6, LITERAL = 7, DONE = 8, START = 9, ARR_FIRST = 10;
    // number sub-states
    private static final int N_SIGN = 0, N_ZERO = 1, N_INT = 2, N_DOT = 3, N_FRAC = 4, N_E = 5, N_ESIGN = 6, N_EXP = 7;

    private int mode = START;
    private int depth;
    private final byte[] stack = new byte[MAX_DEPTH]; // '{' or '['
    private boolean keyString;
    private int escape;      // 0 none, 1 after backslash, 2..5 hex digits still expected (counts down)
    private int utf8Left;    // continuation bytes still expected inside a string
    private int number;
    private String literal;
    private int literalPos;

    public void copyFrom(JsonPrefixMachine o) {
        mode = o.mode;
        depth = o.depth;
        System.arraycopy(o.stack, 0, stack, 0, o.depth);
        keyString = o.keyString;
        escape = o.escape;
        utf8Left = o.utf8Left;
        number = o.number;
        literal = o.literal;
        literalPos = o.literalPos;
    }

    /** Whether a complete object has been read (only whitespace may follow). */
    public boolean complete() {
        return mode == DONE || (mode == NUMBER && depth == 0 && numberCanEnd());
    }

    /** Feeds all of {@code bytes}; false (state undefined) as soon as one byte cannot continue a JSON prefix. */
    public boolean accept(byte[] bytes) {
        for (byte b : bytes) {
            if (!accept(b & 0xFF)) return false;
        }
        return true;
    }

    public boolean accept(int c) {
        switch (mode) {
            case STRING:
                return string(c);
            case NUMBER:
                if (numberByte(c)) return true;
                if (!numberCanEnd()) return false;
                mode = AFTER_VALUE;
                return afterValue(c);
            case LITERAL:
                if (c != literal.charAt(literalPos)) return false;
                if (++literalPos == literal.length()) mode = AFTER_VALUE;
                return true;
            default:
                break;
        }
        // the answer starts with '{' at once (a model would otherwise happily emit whitespace for ever)
        if (mode == START) {
            if (c != '{') return false;
            push('{');
            mode = OBJ_FIRST_KEY;
            return true;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
        switch (mode) {
            case START:
                if (c != '{') return false; // json_object: the top level is an object
                push('{');
                mode = OBJ_FIRST_KEY;
                return true;
            case OBJ_FIRST_KEY:
                if (c == '}') return close('{');
                // fall through
            case OBJ_KEY:
                if (c != '"') return false;
                mode = STRING;
                keyString = true;
                return true;
            case COLON:
                if (c != ':') return false;
                mode = VALUE;
                return true;
            case ARR_FIRST:
                if (c == ']') return close('[');
                // fall through
            case VALUE:
                return value(c);
            case AFTER_VALUE:
                return afterValue(c);
            case DONE:
                return false;
            default:
                return false;
        }
    }

    private boolean value(int c) {
        switch (c) {
            case '{' -> {
                if (!push('{')) return false;
                mode = OBJ_FIRST_KEY;
            }
            case '[' -> {
                if (!push('[')) return false;
                mode = ARR_FIRST;
            }
            case '"' -> {
                mode = STRING;
                keyString = false;
            }
            case 't' -> startLiteral("true");
            case 'f' -> startLiteral("false");
            case 'n' -> startLiteral("null");
            case '-' -> {
                mode = NUMBER;
                number = N_SIGN;
            }
            default -> {
                if (c < '0' || c > '9') return false;
                mode = NUMBER;
                number = c == '0' ? N_ZERO : N_INT;
            }
        }
        return true;
    }

    private void startLiteral(String l) {
        mode = LITERAL;
        literal = l;
        literalPos = 1;
    }

    private boolean afterValue(int c) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
        if (depth == 0) return false;
        byte top = stack[depth - 1];
        if (c == ',') {
            mode = top == '{' ? OBJ_KEY : VALUE;
            return true;
        }
        if (c == '}' && top == '{') return close('{');
        if (c == ']' && top == '[') return close('[');
        return false;
    }

    private boolean push(char c) {
        if (depth == MAX_DEPTH) return false;
        stack[depth++] = (byte) c;
        return true;
    }

    private boolean close(char c) {
        if (depth == 0 || stack[depth - 1] != c) return false;
        depth--;
        mode = depth == 0 ? DONE : AFTER_VALUE;
        return true;
    }

    private boolean string(int c) {
        if (utf8Left > 0) {
            if ((c & 0xC0) != 0x80) return false;
            utf8Left--;
            return true;
        }
        if (escape == 1) {
            if (c == 'u') {
                escape = 5;
                return true;
            }
            escape = 0;
            return "\"\\/bfnrt".indexOf(c) >= 0;
        }
        if (escape > 1) {
            if (Character.digit(c, 16) < 0) return false;
            escape = escape == 2 ? 0 : escape - 1;
            return true;
        }
        if (c == '\\') {
            escape = 1;
            return true;
        }
        if (c == '"') {
            mode = keyString ? COLON : AFTER_VALUE;
            return true;
        }
        if (c < 0x20) return false;
        if (c >= 0x80) {
            if (c >= 0xC2 && c < 0xE0) utf8Left = 1;
            else if (c >= 0xE0 && c < 0xF0) utf8Left = 2;
            else if (c >= 0xF0 && c < 0xF5) utf8Left = 3;
            else return false;
        }
        return true;
    }

    private boolean numberByte(int c) {
        boolean digit = c >= '0' && c <= '9';
        switch (number) {
            case N_SIGN -> {
                if (!digit) return false;
                number = c == '0' ? N_ZERO : N_INT;
            }
            case N_ZERO -> {
                if (c == '.') number = N_DOT;
                else if (c == 'e' || c == 'E') number = N_E;
                else return false;
            }
            case N_INT -> {
                if (digit) return true;
                if (c == '.') number = N_DOT;
                else if (c == 'e' || c == 'E') number = N_E;
                else return false;
            }
            case N_DOT -> {
                if (!digit) return false;
                number = N_FRAC;
            }
            case N_FRAC -> {
                if (digit) return true;
                if (c == 'e' || c == 'E') number = N_E;
                else return false;
            }
            case N_E -> {
                if (c == '+' || c == '-') number = N_ESIGN;
                else if (digit) number = N_EXP;
                else return false;
            }
            case N_ESIGN -> {
                if (!digit) return false;
                number = N_EXP;
            }
            case N_EXP -> {
                if (!digit) return false;
            }
            default -> {
                return false;
            }
        }
        return true;
    }

    private boolean numberCanEnd() {
        return number == N_ZERO || number == N_INT || number == N_FRAC || number == N_EXP;
    }
}
