package dev.enclave.runtime.backend;

import java.util.Locale;

/**
 * A model's KV cache type: the format of the keys and of the values (they may differ: 8-bit keys with 4-bit values),
 * and whether each is rotated per head (a Walsh–Hadamard transform with fixed random signs, so that an outlier
 * channel spreads over the whole head before quantizing; queries get the same rotation, outputs the inverse).
 *
 * <p>Written {@code f32}, {@code q8}, {@code q4r} (rotated), or {@code K/V} for different keys and values:
 * {@code q8/q4}, {@code q8r/q4r}.
 */
public record KvType(KvFormat keys, boolean rotateKeys, KvFormat values, boolean rotateValues,
                     java.util.List<KvFormat> keyHeads, java.util.List<KvFormat> valueHeads, KvCode.Layer code, int window) {

    public static final KvType F32 = new KvType(KvFormat.F32, false, KvFormat.F32, false);

    public KvType {
        if (keys == null || values == null) throw new IllegalArgumentException("KV formats must be given");
        keyHeads = keyHeads == null ? null : java.util.List.copyOf(keyHeads);
        valueHeads = valueHeads == null ? null : java.util.List.copyOf(valueHeads);
        if (window < 0 || window > MAX_WINDOW) throw new IllegalArgumentException("a recent window of " + window + " tokens (0 to " + MAX_WINDOW + ")");
    }

    /** The longest recent window (KIVI) a type may keep at full precision. */
    public static final int MAX_WINDOW = 4096;

    public KvType(KvFormat keys, boolean rotateKeys, KvFormat values, boolean rotateValues,
                  java.util.List<KvFormat> keyHeads, java.util.List<KvFormat> valueHeads) {
        this(keys, rotateKeys, values, rotateValues, keyHeads, valueHeads, null, 0);
    }

    /**
     * This type with each sequence's last {@code tokens} keys and values also kept at full precision and read from
     * there (KIVI's recent window; written {@code q2r+16}): outside the pool, per sequence and layer.
     */
    public KvType withWindow(int tokens) {
        return new KvType(keys, rotateKeys, values, rotateValues, keyHeads, valueHeads, code, tokens);
    }

    /** A layer stored as its transform code says ({@link KvCode}). */
    public static KvType coded(KvCode.Layer code) {
        return new KvType(KvFormat.TC, false, KvFormat.TC, false, null, null, code, 0);
    }

    /** One format for every head of the keys, one for every head of the values. */
    public KvType(KvFormat keys, boolean rotateKeys, KvFormat values, boolean rotateValues) {
        this(keys, rotateKeys, values, rotateValues, null, null);
    }

    /**
     * A format per KV head (the adaptive calibration's per-head choice): {@code keys()}/{@code values()} then name head
     * 0's; a tensor's heads share its rotation.
     */
    public static KvType perHead(java.util.List<KvFormat> keyHeads, boolean rotateKeys, java.util.List<KvFormat> valueHeads, boolean rotateValues) {
        return new KvType(keyHeads.getFirst(), rotateKeys, valueHeads.getFirst(), rotateValues, keyHeads, valueHeads);
    }

    /** Head {@code h}'s format of the keys. */
    public KvFormat keyFormat(int h) {
        return keyHeads == null ? keys : keyHeads.get(h);
    }

    /** Head {@code h}'s format of the values. */
    public KvFormat valueFormat(int h) {
        return valueHeads == null ? values : valueHeads.get(h);
    }

    public static KvType parse(String spec) {
        String s = spec == null ? "" : spec.strip().toLowerCase(Locale.ROOT);
        int plus = s.lastIndexOf('+');
        if (plus > 0) {
            KvType t = parse(s.substring(0, plus)).withWindow(window(s.substring(plus + 1), spec));
            if (!t.lossy()) throw new IllegalArgumentException("KV cache type '" + spec + "': a recent window is for quantized or coded caches");
            return t;
        }
        if (s.isEmpty()) throw new IllegalArgumentException("empty KV cache type (f32, f16, q8, q4, q8r, q4r, or K/V)");
        String[] parts = s.split("/", -1);
        if (parts.length > 2) throw new IllegalArgumentException("KV cache type '" + spec + "': at most one '/' (keys/values)");
        String k = parts[0], v = parts.length == 2 ? parts[1] : parts[0];
        if (!k.contains("|") && !v.contains("|")) return new KvType(format(k, spec), rotated(k), format(v, spec), rotated(v));
        // heads separated by '|', in head order (q4r|q2r): one rotation for all heads of a tensor
        java.util.List<KvFormat> kh = k.contains("|") ? heads(k, spec) : null, vh = v.contains("|") ? heads(v, spec) : null;
        String k0 = k.split("\\|")[0], v0 = v.split("\\|")[0];
        return new KvType(format(k0, spec), rotated(k0), format(v0, spec), rotated(v0), kh, vh);
    }

    /** The N of a {@code +N} suffix. */
    static int window(String n, String spec) {
        try {
            int w = Integer.parseInt(n.strip());
            if (w >= 1 && w <= MAX_WINDOW) return w;
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new IllegalArgumentException("KV cache type '" + spec + "': +N keeps the last N tokens at full precision, 1 to " + MAX_WINDOW);
    }

    private static java.util.List<KvFormat> heads(String part, String spec) {
        String[] hs = part.split("\\|", -1);
        java.util.List<KvFormat> out = new java.util.ArrayList<>();
        for (String h : hs) {
            if (rotated(h) != rotated(hs[0])) {
                throw new IllegalArgumentException("KV cache type '" + spec + "': the heads of keys (or of values) are all rotated or none");
            }
            out.add(format(h, spec));
        }
        return out;
    }

    private static boolean rotated(String part) {
        return part.endsWith("r") && part.length() > 1;
    }

    private static KvFormat format(String part, String spec) {
        String base = rotated(part) ? part.substring(0, part.length() - 1) : part;
        try {
            KvFormat f = KvFormat.parse(base);
            if (rotated(part) && !f.quantized()) throw new IllegalArgumentException("rotation is for the quantized formats (q8r, q4r, q3r, q2r, q3jr, q4jr)");
            return f;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("KV cache type '" + spec + "': " + e.getMessage());
        }
    }

    /** Refuses a type this model's heads cannot take (rotation needs a power-of-two head size). */
    public void check(int headDim) {
        if (window > 0 && !lossy()) throw new IllegalArgumentException("KV cache type " + this + ": a recent window is for quantized or coded caches");
        if (code != null && code.owner().headDim() != headDim) {
            throw new IllegalArgumentException("KV code " + code.owner().label() + " is for heads of " + code.owner().headDim() + ", not " + headDim);
        }
        if ((rotateKeys || rotateValues) && Integer.bitCount(headDim) != 1) {
            throw new IllegalArgumentException("KV cache type " + this + ": rotation needs a power-of-two head size, not " + headDim);
        }
        if (sketched() && (Integer.bitCount(headDim) != 1 || headDim < 8)) {
            throw new IllegalArgumentException("KV cache type " + this + ": the QJL sketch needs a power-of-two head size of 8 or more, not " + headDim);
        }
    }

    /** Whether keys or values lose anything (a recent window means something only then). */
    private boolean lossy() {
        boolean any = code != null || rotateKeys || rotateValues || keys.quantized() || values.quantized();
        if (keyHeads != null) for (KvFormat f : keyHeads) any |= f.quantized();
        if (valueHeads != null) for (KvFormat f : valueHeads) any |= f.quantized();
        return any;
    }

    private boolean sketched() {
        boolean any = keys.sketch || values.sketch;
        if (keyHeads != null) for (KvFormat f : keyHeads) any |= f.sketch;
        if (valueHeads != null) for (KvFormat f : valueHeads) any |= f.sketch;
        return any;
    }

    /** Bytes one position takes in one layer (keys and values, scales included). */
    public long bytesPerPosition(int kvDim, int headDim) {
        if (code != null) return code.bytesPerPosition();
        long b = 0;
        for (int h = 0; h < kvDim / headDim; h++) b += keyFormat(h).bytesPerRow(headDim, headDim) + valueFormat(h).bytesPerRow(headDim, headDim);
        return b;
    }

    /** Average bits per cached value (keys and values), scales included, for heads of {@code headDim}. */
    public double bitsPerValue(int headDim) {
        if (code != null) return code.bytesPerPosition() * 8.0 / (2.0 * code.heads() * headDim);
        return (side(keys, keyHeads, headDim) + side(values, valueHeads, headDim)) / 2;
    }

    private static double side(KvFormat uniform, java.util.List<KvFormat> heads, int headDim) {
        if (heads == null) return uniform.bitsPerValue(headDim);
        double sum = 0;
        for (KvFormat f : heads) sum += f.bitsPerValue(headDim);
        return sum / heads.size();
    }

    /** Refuses per-head formats for another number of KV heads. */
    public void checkHeads(int kvHeads) {
        if (code != null && code.heads() != kvHeads) {
            throw new IllegalArgumentException("KV code " + code.owner().label() + " is for " + code.heads() + " KV heads; the model has " + kvHeads);
        }
        if (keyHeads != null && keyHeads.size() != kvHeads || valueHeads != null && valueHeads.size() != kvHeads) {
            throw new IllegalArgumentException("KV cache type " + this + " names formats for " + (keyHeads != null ? keyHeads : valueHeads).size()
                    + " heads; the model has " + kvHeads + " KV heads");
        }
    }

    @Override
    public String toString() {
        String w = window > 0 ? "+" + window : "";
        if (code != null) return "tc:" + code.owner().label() + w;
        String k = side(keys, keyHeads, rotateKeys), v = side(values, valueHeads, rotateValues);
        return (k.equals(v) ? k : k + "/" + v) + w;
    }

    private static String side(KvFormat uniform, java.util.List<KvFormat> heads, boolean rotated) {
        if (heads == null) return uniform + (rotated ? "r" : "");
        StringBuilder b = new StringBuilder();
        for (KvFormat f : heads) b.append(b.isEmpty() ? "" : "|").append(f).append(rotated ? "r" : "");
        return b.toString();
    }
}
