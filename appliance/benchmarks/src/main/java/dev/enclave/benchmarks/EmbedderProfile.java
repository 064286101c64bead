package dev.enclave.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.enclave.rag.embed.EmbeddingModel;
import dev.enclave.rag.embed.NativeLibraries;

import java.io.InputStream;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Where a bundled embedder's time goes, from ONNX Runtime's own per-operator profile: one input of {@code tokens}
 * tokens, one thread, as ingestion runs it. Prints microseconds per input token for the int8 matrix products
 * (the part no scheduling can shrink), attention (grows with the input's length) and the rest, which is what
 * bounds ingestion on a small box.
 *
 * <pre>
 * ./mvnw -Pjmh -q package -pl appliance/benchmarks -am -DskipTests
 * java -cp appliance/benchmarks/target/benchmarks.jar dev.enclave.benchmarks.EmbedderProfile minilm 254 40
 * </pre>
 */
public final class EmbedderProfile {

    private EmbedderProfile() {
    }

    public static void main(String[] args) throws Exception {
        EmbeddingModel model = EmbeddingModel.named(args.length > 0 ? args[0] : "minilm");
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 254;
        int runs = args.length > 2 ? Integer.parseInt(args[2]) : 40;
        Path work = Files.createTempDirectory("enclave-embedder-profile");
        NativeLibraries.prepare(work.resolve("native"));
        byte[] onnx;
        try (InputStream in = EmbeddingModel.class.getResourceAsStream("/" + model.id + ".onnx")) {
            if (in == null) throw new IllegalStateException("model not on the class path: " + model.id);
            onnx = in.readAllBytes();
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        String profile;
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(1);
            options.setInterOpNumThreads(1);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            options.enableProfiling(work.resolve("ort").toString());
            try (OrtSession session = env.createSession(onnx, options)) {
                long[] ids = new long[tokens];
                long[] mask = new long[tokens];
                SplittableRandom r = new SplittableRandom(3);
                for (int i = 0; i < tokens; i++) {
                    ids[i] = 1000 + r.nextInt(20000);
                    mask[i] = 1;
                }
                ids[0] = 101; // [CLS]
                ids[tokens - 1] = 102; // [SEP]
                long[] shape = {1, tokens};
                long t0 = System.nanoTime();
                for (int i = 0; i < runs; i++) {
                    try (OnnxTensor tIds = OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape);
                         OnnxTensor tMask = OnnxTensor.createTensor(env, LongBuffer.wrap(mask), shape);
                         OnnxTensor tTypes = OnnxTensor.createTensor(env, LongBuffer.wrap(new long[tokens]), shape)) {
                        Map<String, OnnxTensor> in = session.getInputNames().contains("token_type_ids")
                                ? Map.of("input_ids", tIds, "attention_mask", tMask, "token_type_ids", tTypes)
                                : Map.of("input_ids", tIds, "attention_mask", tMask);
                        try (OrtSession.Result ignored = session.run(in)) {
                            // output unused: the profile is the point
                        }
                    }
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                System.out.printf("%s, %d tokens, 1 thread: %.0f tokens/s (%d runs, profiling on)%n",
                        model.id, tokens, runs * (double) tokens / seconds, runs);
                profile = session.endProfiling();
            }
        }
        Map<String, Double> byGroup = new LinkedHashMap<>();
        for (String g : new String[] {"int8 matrix products", "attention", "GELU", "layer norms", "other"}) byGroup.put(g, 0.0);
        Map<String, Double> byOp = new LinkedHashMap<>();
        double total = 0;
        for (JsonNode e : new ObjectMapper().readTree(Path.of(profile).toFile())) {
            if (!"Node".equals(e.path("cat").asText()) || !e.path("name").asText().endsWith("_kernel_time")) continue;
            String op = e.path("args").path("op_name").asText();
            String node = e.path("name").asText();
            double us = e.path("dur").asDouble();
            total += us;
            byOp.merge(op, us, Double::sum);
            byGroup.merge(group(op, node), us, Double::sum);
        }
        double perToken = 1.0 / runs / tokens; // no warm-up: the first run's extra cost is spread over all of them
        System.out.printf("%-24s %10s %8s%n", "part", "us/token", "share");
        for (var g : byGroup.entrySet()) {
            System.out.printf("%-24s %10.1f %7.1f%%%n", g.getKey(), g.getValue() * perToken, 100 * g.getValue() / total);
        }
        System.out.printf("%-24s %10.1f%n", "total", total * perToken);
        System.out.println("by operator:");
        var ops = new java.util.ArrayList<>(byOp.entrySet());
        ops.sort((a, b) -> Double.compare(b.getValue(), a.getValue()));
        for (var o : ops.subList(0, Math.min(12, ops.size()))) {
            System.out.printf("  %-24s %10.1f %7.1f%%%n", o.getKey(), o.getValue() * perToken, 100 * o.getValue() / total);
        }
    }

    private static String group(String op, String node) {
        return switch (op) {
            case "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "DynamicQuantizeLinear", "MatMulInteger" -> "int8 matrix products";
            case "FusedMatMul", "MatMul", "Softmax", "Transpose" -> "attention";
            case "Gelu", "BiasGelu", "FastGelu" -> "GELU";
            case "LayerNormalization", "SkipLayerNormalization" -> "layer norms";
            case "Add" -> node.contains("attention/self") ? "attention" : "other"; // the mask added to the scores
            default -> "other";
        };
    }
}
