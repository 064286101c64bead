package dev.enclave.runtime.backend;

import java.util.ArrayList;
import java.util.List;

/**
 * The KV cache type of every layer: one {@link KvType} for all (written as that type, {@code q8/q4r}), or one per
 * layer, comma-separated in layer order ({@code q8/q4r,q4r,q4r,q3r/q2r}), as the adaptive calibration chooses.
 */
public record KvPlan(List<KvType> layers) {

    public static final KvPlan F32 = new KvPlan(List.of(KvType.F32));

    public KvPlan {
        if (layers == null || layers.isEmpty()) throw new IllegalArgumentException("a KV plan names at least one type");
        layers = List.copyOf(layers);
    }

    public static KvPlan of(KvType type) {
        return new KvPlan(List.of(type));
    }

    public static KvPlan parse(String spec) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("empty KV cache type");
        if (spec.strip().startsWith("tc:")) {
            String path = spec.strip().substring(3);
            int window = 0, plus = path.lastIndexOf('+');
            if (plus > 0 && path.substring(plus + 1).matches("\\s*\\d+\\s*")) {
                window = KvType.window(path.substring(plus + 1), spec);
                path = path.substring(0, plus);
            }
            java.nio.file.Path file = java.nio.file.Path.of(path);
            try {
                KvPlan plan = KvCode.read(file).plan();
                return window == 0 ? plan : plan.withWindow(window);
            } catch (java.nio.file.NoSuchFileException e) {
                throw new IllegalArgumentException("KV code " + file + " does not exist");
            } catch (java.io.IOException e) {
                throw new IllegalArgumentException(e.getMessage() != null ? e.getMessage() : "cannot read KV code " + file);
            }
        }
        List<KvType> types = new ArrayList<>();
        for (String part : spec.split(",", -1)) types.add(KvType.parse(part));
        return new KvPlan(types);
    }

    /** Every layer's type with a recent window of {@code tokens} (KvType#withWindow). */
    public KvPlan withWindow(int tokens) {
        List<KvType> types = new ArrayList<>();
        for (KvType t : layers) types.add(t.withWindow(tokens));
        return new KvPlan(types);
    }

    public boolean uniform() {
        return layers.size() == 1;
    }

    /** Layer {@code l}'s type. */
    public KvType type(int l) {
        return uniform() ? layers.getFirst() : layers.get(l);
    }

    /** Refuses a plan that does not fit a model of {@code blocks} layers with heads of {@code headDim}. */
    public void check(int blocks, int headDim) {
        if (!uniform() && layers.size() != blocks && layers.getFirst().code() != null) {
            throw new IllegalArgumentException("KV code " + layers.getFirst().code().owner().label() + " is for a model of " + layers.size() + " layers, not " + blocks);
        }
        if (!uniform() && layers.size() != blocks) {
            throw new IllegalArgumentException("KV plan of " + layers.size() + " layers for a model of " + blocks);
        }
        for (KvType t : layers) t.check(headDim);
    }

    /** Bytes one position takes in all {@code blocks} layers. */
    public long bytesPerPosition(int blocks, int kvDim, int headDim) {
        long sum = 0;
        for (int l = 0; l < blocks; l++) sum += type(l).bytesPerPosition(kvDim, headDim);
        return sum;
    }

    /** Average bits per cached value over all layers, scales included. */
    public double bitsPerValue(int blocks, int kvDim, int headDim) {
        return bytesPerPosition(blocks, kvDim, headDim) * 8.0 / (2.0 * blocks * kvDim);
    }

    @Override
    public String toString() {
        KvCode code = layers.getFirst().code() != null ? layers.getFirst().code().owner() : null;
        if (code != null && layers.size() == code.layers()) {
            boolean all = true;
            for (int l = 0; l < layers.size(); l++) all &= layers.get(l).code() == code.layer(l);
            if (all) return "tc:" + code.label() + (layers.getFirst().window() > 0 ? "+" + layers.getFirst().window() : "");
        }
        StringBuilder b = new StringBuilder();
        for (KvType t : layers) b.append(b.isEmpty() ? "" : ",").append(t);
        return b.toString();
    }
}
