package dev.enclave.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the shared test data (../shared beside the repository) and reads reference JSON. */
public final class SharedData {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SharedData() {
    }

    public static Path dir() {
        String prop = System.getProperty("enclave.shared.dir");
        if (prop != null && Files.isDirectory(Path.of(prop))) {
            return Path.of(prop).normalize();
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path candidate = p.resolveSibling("shared");
            if (Files.isDirectory(candidate.resolve("fixtures"))) {
                return candidate;
            }
        }
        throw new IllegalStateException("shared test data not found: expected ../shared beside the repository "
                + "(set -Denclave.shared.dir=PATH)");
    }

    public static Path model(String file) {
        Path p = dir().resolve("fixtures/models").resolve(file);
        if (!Files.isRegularFile(p)) {
            throw new IllegalStateException("missing shared fixture " + p);
        }
        return p;
    }

    public static Path vocab(String file) {
        return dir().resolve("fixtures/vocab").resolve(file);
    }

    public static JsonNode json(Path p) {
        try {
            return JSON.readTree(p.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) r[i] = array.get(i).asInt();
        return r;
    }

    public static double[] doubles(JsonNode array) {
        double[] r = new double[array.size()];
        for (int i = 0; i < r.length; i++) r[i] = array.get(i).asDouble();
        return r;
    }
}
