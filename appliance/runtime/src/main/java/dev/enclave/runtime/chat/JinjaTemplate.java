package dev.enclave.runtime.chat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small interpreter for the subset of Jinja2 that model chat templates use: output and statement tags with
 * whitespace control, {@code if/elif/else}, {@code for} (with {@code loop.*}, {@code else}, {@code break},
 * {@code continue}), {@code set} (including {@code namespace()} attributes and block sets), {@code macro}, the
 * usual operators, string and dict methods ({@code strip}, {@code split}, {@code startswith}, {@code items},
 * {@code get} ...), filters ({@code trim}, {@code tojson}, {@code length}, {@code join}, {@code default} ...) and
 * tests ({@code defined}, {@code none}, {@code string}, {@code mapping} ...). Values are plain Java: String,
 * Long, Double, Boolean, null (none), List, Map.
 */
public final class JinjaTemplate {

    /** A callable value (global function or macro). */
    @FunctionalInterface
    public interface Function {
        Object call(List<Object> args, Map<String, Object> kwargs);
    }

    /** The value of a name that is not defined: falsy, renders as "", attribute access stays undefined. */
    public static final Object UNDEFINED = new Object() {
        @Override
        public String toString() {
            return "";
        }
    };

    /** {@code namespace(...)}: a mutable object whose attributes can be set from inside loops. */
    static final class Namespace extends LinkedHashMap<String, Object> {
    }

    private final List<Node> body;

    private JinjaTemplate(List<Node> body) {
        this.body = body;
    }

    public static JinjaTemplate parse(String source) {
        Parser p = new Parser(JinjaLexer.lex(source));
        List<Node> nodes = p.block();
        if (p.pos < p.segments.size()) {
            throw new TemplateException("unexpected '{% " + p.segments.get(p.pos).body() + " %}' at line " + p.segments.get(p.pos).line());
        }
        return new JinjaTemplate(nodes);
    }

    public String render(Map<String, Object> context) {
        Scope globals = new Scope(null);
        globals.vars.put("namespace", (Function) (args, kwargs) -> {
            Namespace ns = new Namespace();
            for (Object a : args) if (a instanceof Map<?, ?> m) m.forEach((k, v) -> ns.put(String.valueOf(k), v));
            ns.putAll(kwargs);
            return ns;
        });
        globals.vars.put("raise_exception", (Function) (args, kwargs) -> {
            throw new TemplateException("template raised: " + (args.isEmpty() ? "" : str(args.getFirst())));
        });
        globals.vars.put("range", (Function) (args, kwargs) -> {
            long start = 0, stop, step = 1;
            if (args.size() == 1) stop = toLong(args.get(0));
            else {
                start = toLong(args.get(0));
                stop = toLong(args.get(1));
                if (args.size() > 2) step = toLong(args.get(2));
            }
            if (step == 0) throw new TemplateException("range() step must not be zero");
            List<Object> r = new ArrayList<>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
                r.add(i);
                if (r.size() > 1_000_000) throw new TemplateException("range() too long");
            }
            return r;
        });
        globals.vars.putAll(context);
        StringBuilder out = new StringBuilder();
        exec(body, new Scope(globals), out);
        return out.toString();
    }

    // ===================================================================== AST

    sealed interface Node permits Text, Output, If, For, Set, SetBlock, Macro, Break, Continue {
    }

    record Text(String text) implements Node {
    }

    record Output(Expr expr) implements Node {
    }

    record If(List<Expr> conditions, List<List<Node>> branches, List<Node> otherwise) implements Node {
    }

    record For(List<String> targets, Expr iterable, Expr filter, List<Node> body, List<Node> otherwise) implements Node {
    }

    record Set(String name, String attribute, Expr value) implements Node {
    }

    record SetBlock(String name, List<Node> body) implements Node {
    }

    record Macro(String name, List<String> params, List<Expr> defaults, List<Node> body) implements Node {
    }

    record Break() implements Node {
    }

    record Continue() implements Node {
    }

    sealed interface Expr permits Literal, Name, GetAttr, GetItem, Slice, Call, Filter, Test, Unary, Binary, Cond, ListExpr, DictExpr {
    }

    record Literal(Object value) implements Expr {
    }

    record Name(String name) implements Expr {
    }

    record GetAttr(Expr target, String name) implements Expr {
    }

    record GetItem(Expr target, Expr index) implements Expr {
    }

    record Slice(Expr target, Expr start, Expr stop, Expr step) implements Expr {
    }

    record Call(Expr target, List<Expr> args, Map<String, Expr> kwargs) implements Expr {
    }

    record Filter(Expr target, String name, List<Expr> args, Map<String, Expr> kwargs) implements Expr {
    }

    record Test(Expr target, String name, List<Expr> args, boolean negated) implements Expr {
    }

    record Unary(String op, Expr operand) implements Expr {
    }

    record Binary(String op, Expr left, Expr right) implements Expr {
    }

    record Cond(Expr condition, Expr then, Expr otherwise) implements Expr {
    }

    record ListExpr(List<Expr> items) implements Expr {
    }

    record DictExpr(List<Expr> keys, List<Expr> values) implements Expr {
    }

    // ===================================================================== parser

    /** Limits that keep a GGUF's template (untrusted input) from hanging or crashing the server. */
    static final int MAX_PARSE_DEPTH = 64;
    static final int MAX_BLOCK_DEPTH = 64;
    static final int MAX_RENDER_DEPTH = 256;
    static final long MAX_RENDER_STEPS = 2_000_000;

    private static final class Parser {
        final List<JinjaLexer.Segment> segments;
        int pos;
        int depth;

        Parser(List<JinjaLexer.Segment> segments) {
            this.segments = segments;
        }

        /** Parses nodes until a statement whose first word is in {@code stops} (not consumed) or the end. */
        List<Node> block(String... stops) {
            if (++depth > MAX_BLOCK_DEPTH) {
                throw new TemplateException("statements nested deeper than " + MAX_BLOCK_DEPTH + " levels (limit)");
            }
            try {
                return blockBody(stops);
            } finally {
                depth--;
            }
        }

        private List<Node> blockBody(String... stops) {
            List<Node> nodes = new ArrayList<>();
            while (pos < segments.size()) {
                JinjaLexer.Segment s = segments.get(pos);
                switch (s.kind()) {
                    case TEXT -> {
                        nodes.add(new Text(s.body()));
                        pos++;
                    }
                    case OUTPUT -> {
                        nodes.add(new Output(expression(s)));
                        pos++;
                    }
                    case STATEMENT -> {
                        String word = firstWord(s.body());
                        if (Arrays.asList(stops).contains(word)) return nodes;
                        nodes.add(statement(s, word));
                    }
                }
            }
            if (stops.length > 0) {
                throw new TemplateException("missing {% " + stops[stops.length - 1] + " %} at the end of the template");
            }
            return nodes;
        }

        Node statement(JinjaLexer.Segment s, String word) {
            ExprParser e = new ExprParser(s.body(), s.line());
            e.expectName(word);
            switch (word) {
                case "if" -> {
                    List<Expr> conds = new ArrayList<>();
                    List<List<Node>> branches = new ArrayList<>();
                    conds.add(e.expressionToEnd());
                    pos++;
                    branches.add(block("elif", "else", "endif"));
                    List<Node> otherwise = List.of();
                    while (true) {
                        JinjaLexer.Segment t = segments.get(pos);
                        String w = firstWord(t.body());
                        pos++;
                        if (w.equals("elif")) {
                            ExprParser c = new ExprParser(t.body(), t.line());
                            c.expectName("elif");
                            conds.add(c.expressionToEnd());
                            branches.add(block("elif", "else", "endif"));
                        } else if (w.equals("else")) {
                            otherwise = block("endif");
                        } else {
                            break; // endif
                        }
                    }
                    return new If(conds, branches, otherwise);
                }
                case "for" -> {
                    List<String> targets = new ArrayList<>();
                    targets.add(e.name());
                    while (e.peek(",")) {
                        e.next();
                        targets.add(e.name());
                    }
                    e.expectName("in");
                    Expr iterable = e.or();
                    Expr filter = null;
                    if (e.peekName("if")) {
                        e.next();
                        filter = e.or();
                    }
                    e.end();
                    pos++;
                    List<Node> body = block("else", "endfor");
                    List<Node> otherwise = List.of();
                    if (firstWord(segments.get(pos).body()).equals("else")) {
                        pos++;
                        otherwise = block("endfor");
                    }
                    pos++;
                    return new For(targets, iterable, filter, body, otherwise);
                }
                case "set" -> {
                    String name = e.name();
                    String attr = null;
                    if (e.peek(".")) {
                        e.next();
                        attr = e.name();
                    }
                    if (e.atEnd()) {
                        pos++;
                        List<Node> body = block("endset");
                        pos++;
                        return new SetBlock(name, body);
                    }
                    e.expect("=");
                    Expr value = e.expressionToEnd();
                    pos++;
                    return new Set(name, attr, value);
                }
                case "macro" -> {
                    String name = e.name();
                    e.expect("(");
                    List<String> params = new ArrayList<>();
                    List<Expr> defaults = new ArrayList<>();
                    while (!e.peek(")")) {
                        params.add(e.name());
                        if (e.peek("=")) {
                            e.next();
                            defaults.add(e.ternary());
                        } else {
                            defaults.add(null);
                        }
                        if (e.peek(",")) e.next();
                    }
                    e.expect(")");
                    e.end();
                    pos++;
                    List<Node> body = block("endmacro");
                    pos++;
                    return new Macro(name, params, defaults, body);
                }
                case "break" -> {
                    pos++;
                    return new Break();
                }
                case "continue" -> {
                    pos++;
                    return new Continue();
                }
                case "generation", "endgeneration" -> {
                    pos++;
                    return new Text("");
                }
                default -> throw new TemplateException("unsupported statement '{% " + s.body() + " %}' at line " + s.line());
            }
        }

        Expr expression(JinjaLexer.Segment s) {
            return new ExprParser(s.body(), s.line()).expressionToEnd();
        }

        static String firstWord(String body) {
            int i = 0;
            while (i < body.length() && (Character.isLetterOrDigit(body.charAt(i)) || body.charAt(i) == '_')) i++;
            return body.substring(0, i);
        }
    }

    /** Recursive-descent parser for one tag's expression text. */
    private static final class ExprParser {
        private final List<String> toks = new ArrayList<>();
        private final List<Character> kinds = new ArrayList<>(); // 'n' name, 's' string, 'd' number, 'o' operator
        private final int line;
        private int p;

        ExprParser(String src, int line) {
            this.line = line;
            int i = 0;
            while (i < src.length()) {
                char c = src.charAt(i);
                if (Character.isWhitespace(c)) {
                    i++;
                } else if (Character.isLetter(c) || c == '_') {
                    int j = i;
                    while (j < src.length() && (Character.isLetterOrDigit(src.charAt(j)) || src.charAt(j) == '_')) j++;
                    add(src.substring(i, j), 'n');
                    i = j;
                } else if (Character.isDigit(c)) {
                    int j = i;
                    while (j < src.length() && (Character.isDigit(src.charAt(j)) || src.charAt(j) == '.' || src.charAt(j) == '_')) j++;
                    add(src.substring(i, j).replace("_", ""), 'd');
                    i = j;
                } else if (c == '\'' || c == '"') {
                    StringBuilder sb = new StringBuilder();
                    int j = i + 1;
                    while (j < src.length() && src.charAt(j) != c) {
                        char d = src.charAt(j);
                        if (d == '\\' && j + 1 < src.length()) {
                            char n = src.charAt(++j);
                            switch (n) {
                                case 'n' -> sb.append('\n');
                                case 't' -> sb.append('\t');
                                case 'r' -> sb.append('\r');
                                case '\\' -> sb.append('\\');
                                case '\'' -> sb.append('\'');
                                case '"' -> sb.append('"');
                                default -> sb.append('\\').append(n);
                            }
                        } else {
                            sb.append(d);
                        }
                        j++;
                    }
                    if (j >= src.length()) throw error("unterminated string");
                    add(sb.toString(), 's');
                    i = j + 1;
                } else {
                    String two = i + 1 < src.length() ? src.substring(i, i + 2) : "";
                    if (List.of("==", "!=", "<=", ">=", "//", "**").contains(two)) {
                        add(two, 'o');
                        i += 2;
                    } else if ("+-*/%~|.,:()[]{}<>=".indexOf(c) >= 0) {
                        add(String.valueOf(c), 'o');
                        i++;
                    } else {
                        throw error("unexpected character '" + c + "'");
                    }
                }
            }
        }

        private void add(String t, char k) {
            toks.add(t);
            kinds.add(k);
        }

        TemplateException error(String msg) {
            return new TemplateException(msg + " at line " + line);
        }

        boolean atEnd() {
            return p >= toks.size();
        }

        boolean peek(String op) {
            return p < toks.size() && kinds.get(p) == 'o' && toks.get(p).equals(op);
        }

        boolean peekName(String n) {
            return p < toks.size() && kinds.get(p) == 'n' && toks.get(p).equals(n);
        }

        String next() {
            if (atEnd()) throw error("unexpected end of expression");
            return toks.get(p++);
        }

        void expect(String op) {
            if (!peek(op)) throw error("expected '" + op + "'" + (atEnd() ? "" : " but found '" + toks.get(p) + "'"));
            p++;
        }

        void expectName(String n) {
            if (!peekName(n)) throw error("expected '" + n + "'");
            p++;
        }

        String name() {
            if (atEnd() || kinds.get(p) != 'n') throw error("expected a name");
            return toks.get(p++);
        }

        void end() {
            if (!atEnd()) throw error("unexpected '" + toks.get(p) + "'");
        }

        Expr expressionToEnd() {
            Expr e = ternary();
            end();
            return e;
        }

        private int depth;

        /** Every nested expression passes here: a bounded depth, so a hostile template cannot overflow the stack. */
        Expr ternary() {
            deeper();
            try {
                return ternaryBody();
            } finally {
                depth--;
            }
        }

        private Expr ternaryBody() {
            Expr e = or();
            if (peekName("if")) {
                next();
                Expr cond = or();
                Expr otherwise = null;
                if (peekName("else")) {
                    next();
                    otherwise = ternary();
                }
                return new Cond(cond, e, otherwise);
            }
            return e;
        }

        Expr or() {
            Expr e = and();
            while (peekName("or")) {
                next();
                e = new Binary("or", e, and());
            }
            return e;
        }

        Expr and() {
            Expr e = not();
            while (peekName("and")) {
                next();
                e = new Binary("and", e, not());
            }
            return e;
        }

        Expr not() {
            if (peekName("not")) {
                next();
                deeper();
                try {
                    return new Unary("not", not());
                } finally {
                    depth--;
                }
            }
            return compare();
        }

        private void deeper() {
            if (++depth > MAX_PARSE_DEPTH) throw error("expression nested deeper than " + MAX_PARSE_DEPTH + " levels (limit)");
        }

        Expr compare() {
            Expr e = concat();
            while (true) {
                if (peek("==") || peek("!=") || peek("<") || peek(">") || peek("<=") || peek(">=")) {
                    String op = next();
                    e = new Binary(op, e, concat());
                } else if (peekName("in")) {
                    next();
                    e = new Binary("in", e, concat());
                } else if (peekName("not") && p + 1 < toks.size() && toks.get(p + 1).equals("in")) {
                    p += 2;
                    e = new Unary("not", new Binary("in", e, concat()));
                } else if (peekName("is")) {
                    next();
                    boolean negated = false;
                    if (peekName("not")) {
                        next();
                        negated = true;
                    }
                    String test = name();
                    List<Expr> args = new ArrayList<>();
                    if (peek("(")) {
                        next();
                        while (!peek(")")) {
                            args.add(ternary());
                            if (peek(",")) next();
                        }
                        expect(")");
                    } else if (!atEnd() && (kinds.get(p) == 's' || kinds.get(p) == 'd' || (kinds.get(p) == 'n'
                            && !List.of("and", "or", "else", "if", "not", "in", "is").contains(toks.get(p))))) {
                        args.add(primary()); // "is equalto 3", "is sameas none"
                    }
                    e = new Test(e, test, args, negated);
                } else {
                    return e;
                }
            }
        }

        Expr concat() {
            Expr e = additive();
            while (peek("~")) {
                next();
                e = new Binary("~", e, additive());
            }
            return e;
        }

        Expr additive() {
            Expr e = multiplicative();
            while (peek("+") || peek("-")) {
                String op = next();
                e = new Binary(op, e, multiplicative());
            }
            return e;
        }

        Expr multiplicative() {
            Expr e = unary();
            while (peek("*") || peek("/") || peek("//") || peek("%")) {
                String op = next();
                e = new Binary(op, e, unary());
            }
            return e;
        }

        Expr unary() {
            if (peek("-") || peek("+")) {
                boolean minus = next().equals("-");
                deeper();
                try {
                    return minus ? new Unary("-", unary()) : unary();
                } finally {
                    depth--;
                }
            }
            return filtered();
        }

        Expr filtered() {
            Expr e = postfix(primary());
            while (peek("|")) {
                next();
                String name = name();
                List<Expr> args = new ArrayList<>();
                Map<String, Expr> kwargs = new LinkedHashMap<>();
                if (peek("(")) callArgs(args, kwargs);
                e = postfix(new Filter(e, name, args, kwargs));
            }
            return e;
        }

        Expr postfix(Expr e) {
            while (true) {
                if (peek(".")) {
                    next();
                    e = new GetAttr(e, name());
                } else if (peek("[")) {
                    next();
                    Expr start = null, stop = null, step = null;
                    boolean slice = false;
                    if (!peek(":")) start = ternary();
                    if (peek(":")) {
                        slice = true;
                        next();
                        if (!peek(":") && !peek("]")) stop = ternary();
                        if (peek(":")) {
                            next();
                            if (!peek("]")) step = ternary();
                        }
                    }
                    expect("]");
                    e = slice ? new Slice(e, start, stop, step) : new GetItem(e, start);
                } else if (peek("(")) {
                    List<Expr> args = new ArrayList<>();
                    Map<String, Expr> kwargs = new LinkedHashMap<>();
                    callArgs(args, kwargs);
                    e = new Call(e, args, kwargs);
                } else {
                    return e;
                }
            }
        }

        void callArgs(List<Expr> args, Map<String, Expr> kwargs) {
            expect("(");
            while (!peek(")")) {
                if (p + 1 < toks.size() && kinds.get(p) == 'n' && toks.get(p + 1).equals("=") && kinds.get(p + 1) == 'o') {
                    String k = next();
                    next();
                    kwargs.put(k, ternary());
                } else {
                    args.add(ternary());
                }
                if (peek(",")) next();
                else if (!peek(")")) throw error("expected ',' or ')' in call");
            }
            expect(")");
        }

        Expr primary() {
            if (atEnd()) throw error("unexpected end of expression");
            char k = kinds.get(p);
            String t = next();
            if (k == 's') {
                StringBuilder sb = new StringBuilder(t);
                while (!atEnd() && kinds.get(p) == 's') sb.append(next()); // adjacent literals concatenate
                return new Literal(sb.toString());
            }
            if (k == 'd') {
                return new Literal(t.contains(".") ? (Object) Double.parseDouble(t) : (Object) Long.parseLong(t));
            }
            if (k == 'n') {
                return switch (t) {
                    case "true", "True" -> new Literal(Boolean.TRUE);
                    case "false", "False" -> new Literal(Boolean.FALSE);
                    case "none", "None" -> new Literal(null);
                    default -> new Name(t);
                };
            }
            switch (t) {
                case "(" -> {
                    Expr e = ternary();
                    if (peek(",")) { // tuple
                        List<Expr> items = new ArrayList<>(List.of(e));
                        while (peek(",")) {
                            next();
                            if (peek(")")) break;
                            items.add(ternary());
                        }
                        expect(")");
                        return new ListExpr(items);
                    }
                    expect(")");
                    return e;
                }
                case "[" -> {
                    List<Expr> items = new ArrayList<>();
                    while (!peek("]")) {
                        items.add(ternary());
                        if (peek(",")) next();
                        else if (!peek("]")) throw error("expected ',' or ']' in list");
                    }
                    expect("]");
                    return new ListExpr(items);
                }
                case "{" -> {
                    List<Expr> keys = new ArrayList<>();
                    List<Expr> values = new ArrayList<>();
                    while (!peek("}")) {
                        keys.add(ternary());
                        expect(":");
                        values.add(ternary());
                        if (peek(",")) next();
                        else if (!peek("}")) throw error("expected ',' or '}' in dict");
                    }
                    expect("}");
                    return new DictExpr(keys, values);
                }
                default -> throw error("unexpected '" + t + "'");
            }
        }
    }

    // ===================================================================== evaluation

    /** One render's work: steps (each node executed, each expression evaluated) and nesting, both bounded. */
    private static final class Budget {
        long steps;
        int depth;

        void enter() {
            if (++steps > MAX_RENDER_STEPS) {
                throw new TemplateException("the chat template took more than " + MAX_RENDER_STEPS + " steps to render (limit)");
            }
            if (++depth > MAX_RENDER_DEPTH) {
                throw new TemplateException("the chat template nests deeper than " + MAX_RENDER_DEPTH + " levels while rendering (limit)");
            }
        }

        void leave() {
            depth--;
        }
    }

    private static final class Scope {
        final Scope parent;
        final Map<String, Object> vars = new HashMap<>();
        final Budget budget;

        Scope(Scope parent) {
            this.parent = parent;
            this.budget = parent == null ? new Budget() : parent.budget;
        }

        Object lookup(String name) {
            for (Scope s = this; s != null; s = s.parent) {
                if (s.vars.containsKey(name)) return s.vars.get(name);
            }
            return UNDEFINED;
        }
    }

    private static final class LoopSignal extends RuntimeException {
        final boolean isBreak;

        LoopSignal(boolean isBreak) {
            super(null, null, false, false);
            this.isBreak = isBreak;
        }
    }

    private static final int MAX_OUTPUT = 16 << 20;

    private void exec(List<Node> nodes, Scope scope, StringBuilder out) {
        scope.budget.enter();
        try {
            execBody(nodes, scope, out);
        } finally {
            scope.budget.leave();
        }
    }

    private void execBody(List<Node> nodes, Scope scope, StringBuilder out) {
        for (Node n : nodes) {
            scope.budget.enter(); // a step per node, so loops that print nothing still spend the budget
            scope.budget.leave();
            switch (n) {
                case Text t -> out.append(t.text());
                case Output o -> out.append(str(eval(o.expr(), scope)));
                case If i -> {
                    boolean done = false;
                    for (int k = 0; k < i.conditions().size() && !done; k++) {
                        if (truthy(eval(i.conditions().get(k), scope))) {
                            exec(i.branches().get(k), scope, out);
                            done = true;
                        }
                    }
                    if (!done) exec(i.otherwise(), scope, out);
                }
                case For f -> execFor(f, scope, out);
                case Set s -> {
                    Object v = eval(s.value(), scope);
                    if (s.attribute() == null) {
                        scope.vars.put(s.name(), v);
                    } else if (scope.lookup(s.name()) instanceof Namespace ns) {
                        ns.put(s.attribute(), v);
                    } else {
                        throw new TemplateException("cannot set attribute '" + s.attribute() + "' on '" + s.name() + "' (not a namespace)");
                    }
                }
                case SetBlock s -> {
                    StringBuilder sb = new StringBuilder();
                    exec(s.body(), new Scope(scope), sb);
                    scope.vars.put(s.name(), sb.toString());
                }
                case Macro m -> scope.vars.put(m.name(), (Function) (args, kwargs) -> {
                    Scope local = new Scope(scope);
                    for (int k = 0; k < m.params().size(); k++) {
                        String param = m.params().get(k);
                        Object v = k < args.size() ? args.get(k)
                                : kwargs.containsKey(param) ? kwargs.get(param)
                                : m.defaults().get(k) != null ? eval(m.defaults().get(k), scope) : UNDEFINED;
                        local.vars.put(param, v);
                    }
                    StringBuilder sb = new StringBuilder();
                    exec(m.body(), local, sb);
                    return sb.toString();
                });
                case Break b -> throw new LoopSignal(true);
                case Continue c -> throw new LoopSignal(false);
            }
            if (out.length() > MAX_OUTPUT) throw new TemplateException("template output exceeds " + MAX_OUTPUT + " characters");
        }
    }

    /** Joined strings, bounded like the output (doubling a string in a loop would otherwise exhaust the heap). */
    private static String concat(String a, String b) {
        if ((long) a.length() + b.length() > MAX_OUTPUT) throw new TemplateException("a string in the chat template grew past " + MAX_OUTPUT + " characters (limit)");
        return a + b;
    }

    private void execFor(For f, Scope scope, StringBuilder out) {
        Object it = eval(f.iterable(), scope);
        List<Object> all = new ArrayList<>();
        if (it instanceof Map<?, ?> m) {
            all.addAll(m.keySet());
        } else if (it instanceof Collection<?> c) {
            all.addAll(c);
        } else if (it instanceof String s) {
            s.codePoints().forEach(cp -> all.add(new String(Character.toChars(cp))));
        } else if (it != null && it != UNDEFINED) {
            throw new TemplateException("cannot iterate over " + typeName(it));
        }
        List<Object> items = all;
        if (f.filter() != null) {
            List<Object> kept = new ArrayList<>();
            for (Object item : items) {
                Scope s = new Scope(scope);
                bind(f.targets(), item, s);
                if (truthy(eval(f.filter(), s))) kept.add(item);
            }
            items = kept;
        }
        if (items.isEmpty()) {
            exec(f.otherwise(), scope, out);
            return;
        }
        for (int i = 0; i < items.size(); i++) {
            Scope s = new Scope(scope);
            bind(f.targets(), items.get(i), s);
            Map<String, Object> loop = new HashMap<>();
            loop.put("index", (long) i + 1);
            loop.put("index0", (long) i);
            loop.put("revindex", (long) (items.size() - i));
            loop.put("revindex0", (long) (items.size() - i - 1));
            loop.put("first", i == 0);
            loop.put("last", i == items.size() - 1);
            loop.put("length", (long) items.size());
            loop.put("previtem", i > 0 ? items.get(i - 1) : UNDEFINED);
            loop.put("nextitem", i + 1 < items.size() ? items.get(i + 1) : UNDEFINED);
            s.vars.put("loop", loop);
            try {
                exec(f.body(), s, out);
            } catch (LoopSignal signal) {
                if (signal.isBreak) break;
            }
        }
    }

    private static void bind(List<String> targets, Object item, Scope s) {
        if (targets.size() == 1) {
            s.vars.put(targets.getFirst(), item);
            return;
        }
        if (!(item instanceof List<?> l) || l.size() != targets.size()) {
            throw new TemplateException("cannot unpack " + typeName(item) + " into " + targets.size() + " names");
        }
        for (int k = 0; k < targets.size(); k++) s.vars.put(targets.get(k), l.get(k));
    }

    private Object eval(Expr e, Scope scope) {
        scope.budget.enter();
        try {
            return evalBody(e, scope);
        } finally {
            scope.budget.leave();
        }
    }

    private Object evalBody(Expr e, Scope scope) {
        return switch (e) {
            case Literal l -> l.value();
            case Name n -> scope.lookup(n.name());
            case GetAttr g -> attr(eval(g.target(), scope), g.name());
            case GetItem g -> item(eval(g.target(), scope), eval(g.index(), scope));
            case Slice s -> slice(eval(s.target(), scope), s.start() == null ? null : eval(s.start(), scope),
                    s.stop() == null ? null : eval(s.stop(), scope), s.step() == null ? null : eval(s.step(), scope));
            case Call c -> call(c, scope);
            case Filter f -> JinjaFilters.apply(f.name(), eval(f.target(), scope), evalAll(f.args(), scope), evalKw(f.kwargs(), scope));
            case Test t -> t.negated() != JinjaFilters.test(t.name(), eval(t.target(), scope), evalAll(t.args(), scope));
            case Unary u -> switch (u.op()) {
                case "not" -> !truthy(eval(u.operand(), scope));
                case "-" -> negate(eval(u.operand(), scope));
                default -> throw new TemplateException("unknown operator " + u.op());
            };
            case Binary b -> binary(b, scope);
            case Cond c -> truthy(eval(c.condition(), scope)) ? eval(c.then(), scope)
                    : c.otherwise() == null ? UNDEFINED : eval(c.otherwise(), scope);
            case ListExpr l -> new ArrayList<>(evalAll(l.items(), scope));
            case DictExpr d -> {
                Map<String, Object> m = new LinkedHashMap<>();
                for (int k = 0; k < d.keys().size(); k++) m.put(str(eval(d.keys().get(k), scope)), eval(d.values().get(k), scope));
                yield m;
            }
        };
    }

    private List<Object> evalAll(List<Expr> es, Scope scope) {
        List<Object> r = new ArrayList<>(es.size());
        for (Expr x : es) r.add(eval(x, scope));
        return r;
    }

    private Map<String, Object> evalKw(Map<String, Expr> es, Scope scope) {
        Map<String, Object> r = new LinkedHashMap<>();
        es.forEach((k, v) -> r.put(k, eval(v, scope)));
        return r;
    }

    private Object call(Call c, Scope scope) {
        List<Object> args = evalAll(c.args(), scope);
        Map<String, Object> kwargs = evalKw(c.kwargs(), scope);
        if (c.target() instanceof GetAttr g) {
            Object self = eval(g.target(), scope);
            Object method = attr(self, g.name());
            if (method instanceof Function fn) return fn.call(args, kwargs);
            return JinjaFilters.method(self, g.name(), args, kwargs);
        }
        Object fn = eval(c.target(), scope);
        if (fn instanceof Function f) return f.call(args, kwargs);
        if (fn == UNDEFINED && c.target() instanceof Name n) {
            throw new TemplateException("'" + n.name() + "' is undefined");
        }
        throw new TemplateException(typeName(fn) + " is not callable");
    }

    private Object binary(Binary b, Scope scope) {
        String op = b.op();
        if (op.equals("and")) {
            Object l = eval(b.left(), scope);
            return truthy(l) ? eval(b.right(), scope) : l;
        }
        if (op.equals("or")) {
            Object l = eval(b.left(), scope);
            return truthy(l) ? l : eval(b.right(), scope);
        }
        Object l = eval(b.left(), scope);
        Object r = eval(b.right(), scope);
        return switch (op) {
            case "==" -> equal(l, r);
            case "!=" -> !equal(l, r);
            case "<" -> compareValues(l, r) < 0;
            case ">" -> compareValues(l, r) > 0;
            case "<=" -> compareValues(l, r) <= 0;
            case ">=" -> compareValues(l, r) >= 0;
            case "in" -> contains(r, l);
            case "~" -> concat(str(l), str(r));
            case "+" -> {
                if (l instanceof List<?> a && r instanceof List<?> c) {
                    if ((long) a.size() + c.size() > MAX_OUTPUT) throw new TemplateException("a list in the chat template grew past " + MAX_OUTPUT + " items (limit)");
                    List<Object> s = new ArrayList<>(a);
                    s.addAll(c);
                    yield s;
                }
                if (isNumber(l) && isNumber(r)) yield arith('+', l, r);
                yield concat(str(l), str(r));
            }
            case "-", "*", "/", "//", "%" -> {
                if (op.equals("*") && l instanceof String s && r instanceof Long n) yield s.repeat((int) Math.max(0, Math.min(n, 1 << 20)));
                yield arith(op.equals("//") ? 'f' : op.charAt(0), l, r);
            }
            default -> throw new TemplateException("unknown operator " + op);
        };
    }

    // ---- value helpers (Python semantics where it matters) ----

    static boolean truthy(Object v) {
        if (v == null || v == UNDEFINED) return false;
        if (v instanceof Boolean b) return b;
        if (v instanceof String s) return !s.isEmpty();
        if (v instanceof Long l) return l != 0;
        if (v instanceof Double d) return d != 0;
        if (v instanceof Collection<?> c) return !c.isEmpty();
        if (v instanceof Map<?, ?> m) return !m.isEmpty();
        return true;
    }

    static String str(Object v) {
        if (v == null) return "None";
        if (v == UNDEFINED) return "";
        if (v instanceof Boolean b) return b ? "True" : "False";
        if (v instanceof Double d) {
            if (d == Math.rint(d) && !Double.isInfinite(d) && Math.abs(d) < 1e16) return String.valueOf(d.longValue()) + ".0";
            return String.valueOf(d);
        }
        if (v instanceof String s) return s;
        if (v instanceof List<?> || v instanceof Map<?, ?>) return JinjaFilters.pyRepr(v);
        return String.valueOf(v);
    }

    static String typeName(Object v) {
        if (v == null) return "none";
        if (v == UNDEFINED) return "undefined";
        return v.getClass().getSimpleName();
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static double toDouble(Object v) {
        if (v instanceof Long l) return l;
        if (v instanceof Double d) return d;
        if (v instanceof Boolean b) return b ? 1 : 0;
        throw new TemplateException("expected a number, got " + typeName(v));
    }

    static long toLong(Object v) {
        if (v instanceof Long l) return l;
        if (v instanceof Double d) return d.longValue();
        if (v instanceof Boolean b) return b ? 1 : 0;
        throw new TemplateException("expected an integer, got " + typeName(v));
    }

    private static Object arith(char op, Object l, Object r) {
        if (!isNumber(l) || !isNumber(r)) {
            throw new TemplateException("unsupported operand types for " + op + ": " + typeName(l) + " and " + typeName(r));
        }
        boolean ints = !(l instanceof Double) && !(r instanceof Double);
        if (ints && op != '/') {
            long a = toLong(l), b = toLong(r);
            return switch (op) {
                case '+' -> a + b;
                case '-' -> a - b;
                case '*' -> a * b;
                case 'f' -> {
                    if (b == 0) throw new TemplateException("division by zero");
                    yield Math.floorDiv(a, b);
                }
                case '%' -> {
                    if (b == 0) throw new TemplateException("division by zero");
                    yield Math.floorMod(a, b);
                }
                default -> throw new TemplateException("bad operator");
            };
        }
        double a = toDouble(l), b = toDouble(r);
        return switch (op) {
            case '+' -> a + b;
            case '-' -> a - b;
            case '*' -> a * b;
            case '/' -> a / b;
            case 'f' -> Math.floor(a / b);
            case '%' -> a - b * Math.floor(a / b);
            default -> throw new TemplateException("bad operator");
        };
    }

    private static Object negate(Object v) {
        if (v instanceof Long l) return -l;
        if (v instanceof Double d) return -d;
        throw new TemplateException("cannot negate " + typeName(v));
    }

    static boolean equal(Object a, Object b) {
        if (a == UNDEFINED || b == UNDEFINED) return a == b;
        if (a == null || b == null) return a == b;
        if (isNumber(a) && isNumber(b) && !(a instanceof Boolean && !(b instanceof Boolean))) return toDouble(a) == toDouble(b);
        return a.equals(b);
    }

    private static int compareValues(Object a, Object b) {
        if (isNumber(a) && isNumber(b)) return Double.compare(toDouble(a), toDouble(b));
        if (a instanceof String x && b instanceof String y) return x.compareTo(y);
        throw new TemplateException("cannot compare " + typeName(a) + " with " + typeName(b));
    }

    private static boolean contains(Object container, Object item) {
        if (container instanceof String s) return item instanceof String i && s.contains(i);
        if (container instanceof Map<?, ?> m) return m.containsKey(str(item));
        if (container instanceof Collection<?> c) {
            for (Object o : c) if (equal(o, item)) return true;
            return false;
        }
        if (container == null || container == UNDEFINED) return false;
        throw new TemplateException("'in' needs a string, list or mapping, got " + typeName(container));
    }

    static Object attr(Object target, String name) {
        if (target instanceof Map<?, ?> m) {
            if (m.containsKey(name)) return m.get(name);
            if (m instanceof Namespace) return UNDEFINED;
        }
        return UNDEFINED; // methods are resolved at call time
    }

    static Object item(Object target, Object index) {
        if (target instanceof Map<?, ?> m) {
            String key = str(index);
            return m.containsKey(key) ? m.get(key) : UNDEFINED;
        }
        if (target instanceof List<?> l && index instanceof Long i) {
            long k = i < 0 ? l.size() + i : i;
            if (k < 0 || k >= l.size()) return UNDEFINED;
            return l.get((int) k);
        }
        if (target instanceof String s && index instanceof Long i) {
            long k = i < 0 ? s.length() + i : i;
            if (k < 0 || k >= s.length()) return UNDEFINED;
            return String.valueOf(s.charAt((int) k));
        }
        return UNDEFINED;
    }

    static Object slice(Object target, Object start, Object stop, Object step) {
        int n;
        if (target instanceof List<?> l) n = l.size();
        else if (target instanceof String s) n = s.length();
        else if (target == UNDEFINED || target == null) return UNDEFINED;
        else throw new TemplateException("cannot slice " + typeName(target));
        long st = step == null ? 1 : toLong(step);
        if (st == 0) throw new TemplateException("slice step cannot be zero");
        long a, b;
        if (st > 0) {
            a = start == null ? 0 : clampIndex(toLong(start), n, 0, n);
            b = stop == null ? n : clampIndex(toLong(stop), n, 0, n);
        } else {
            a = start == null ? n - 1 : clampIndex(toLong(start), n, -1, n - 1);
            b = stop == null ? -1 : clampIndex(toLong(stop), n, -1, n - 1);
        }
        List<Integer> idx = new ArrayList<>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) idx.add((int) i);
        if (target instanceof List<?> l) {
            List<Object> r = new ArrayList<>();
            for (int i : idx) r.add(l.get(i));
            return r;
        }
        String s = (String) target;
        StringBuilder sb = new StringBuilder();
        for (int i : idx) sb.append(s.charAt(i));
        return sb.toString();
    }

    private static long clampIndex(long i, int n, long lo, long hi) {
        if (i < 0) i += n;
        return Math.max(lo, Math.min(hi, i));
    }
}
