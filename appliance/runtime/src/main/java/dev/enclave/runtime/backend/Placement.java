package dev.enclave.runtime.backend;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where a model's layers run: {@link #backend} is the first backend of the order that runs any of them, {@link #layers}
 * the count per backend in the order they run (more than one entry: a split, like llama.cpp's partial offload).
 */
public record Placement(String backend, Map<String, Integer> layers) {

    public Placement {
        layers = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(layers));
    }

    /** The placement of layers run by {@code perLayer}, in layer order. */
    public static Placement of(List<Backend> perLayer) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (Backend b : perLayer) counts.merge(b.name(), 1, Integer::sum);
        return new Placement(perLayer.isEmpty() ? "cpu" : perLayer.getFirst().name(), counts);
    }

    /** Whether the layers run on more than one backend. */
    public boolean split() {
        return layers.size() > 1;
    }

    /** "cpu", or "opencl 12 + cpu 4" for a split. */
    @Override
    public String toString() {
        if (!split()) return backend;
        StringBuilder sb = new StringBuilder();
        layers.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : " + ").append(k).append(' ').append(v));
        return sb.toString();
    }
}
