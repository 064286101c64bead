package dev.enclave.runtime.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.ModelFormatException;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.gguf.GGUFTensorInfo;
import dev.enclave.runtime.gguf.GGUFWriter;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * Corrupt and hostile model files: every failure is a {@link ModelFormatException} whose message says what is
 * wrong, never an OutOfMemoryError, a hang or another exception type.
 */
class HostileModelTest {

    /** Copies a model through the writer, letting the caller drop or change metadata and tensors. */
    static byte[] rewrite(String fixture, Predicate<String> keepKey, Map<String, Object> put, java.util.function.BiFunction<GGUFTensorInfo, byte[], byte[]> data) throws Exception {
        try (GGUFFile f = GGUFFile.open(SharedData.model(fixture))) {
            GGUFWriter w = new GGUFWriter();
            f.metadata().forEach((k, v) -> {
                if (keepKey.test(k)) w.put(k, f.typedValue(k));
            });
            put.forEach(w::put);
            for (GGUFTensorInfo t : f.tensors().values()) {
                byte[] bytes = f.tensorData(t).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                w.tensor(t.name(), t.type(), MemorySegment.ofArray(data.apply(t, bytes)), t.dims());
            }
            return w.toBytes();
        }
    }

    static ModelFormatException loadFails(byte[] file) {
        return assertThrows(ModelFormatException.class, () -> {
            try (TransformerModel m = TransformerModel.load("hostile", GGUFFile.read(file))) {
                InferenceState s = m.newState(8);
                m.ingest(s, m.tokenizer().encode("Hello there", true, false));
            }
        });
    }

    /** A NaN scale in a repacked matrix (Q4_0; Q8_0 where it takes the integer route) is refused with the tensor's name. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"syn-llama3-bpe-Q4_0.gguf, Q4_0", "syn-llama2-spm-Q8_0.gguf, Q8_0"})
    void nanScaleIsNamed(String model, GGMLType type) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(type != GGMLType.Q8_0 || dev.enclave.runtime.tensor.Q8RowGroupTensor.PREFERRED,
                "Q8_0 stays on the float route on this CPU");
        byte[] file = rewrite(model, k -> true, Map.of(), (t, b) -> {
            if (t.name().equals("blk.1.ffn_down.weight") && t.type() == type) {
                b[0] = 0x00;
                b[1] = 0x7E; // half-precision NaN as the first block's scale
            }
            return b;
        });
        ModelFormatException e = loadFails(file);
        assertTrue(e.getMessage().contains("blk.1.ffn_down.weight") && e.getMessage().contains("non-finite"), e.getMessage());
    }

    @Test
    void missingMergesAndMissingTensorsAndUnknownArchitecture() throws Exception {
        ModelFormatException merges = loadFails(rewrite("syn-qwen2-bpe-F32.gguf", k -> !k.equals("tokenizer.ggml.merges"), Map.of(), (t, b) -> b));
        assertTrue(merges.getMessage().contains("merges"), merges.getMessage());
        ModelFormatException arch = loadFails(rewrite("stories260K.gguf", k -> true, Map.of("general.architecture", "mamba"), (t, b) -> b));
        assertTrue(arch.getMessage().contains("'mamba'"), arch.getMessage());
        ModelFormatException pre = loadFails(rewrite("syn-qwen2-bpe-F32.gguf", k -> true, Map.of("tokenizer.ggml.pre", "klingon"), (t, b) -> b));
        assertTrue(pre.getMessage().contains("klingon"), pre.getMessage());
        ModelFormatException heads = loadFails(rewrite("stories260K.gguf", k -> true, Map.of("llama.attention.head_count", 7), (t, b) -> b));
        assertTrue(heads.getMessage().contains("head count"), heads.getMessage());
    }

    @Test
    void overlappingTensorsAreRefused() throws Exception {
        byte[] file = Files.readAllBytes(SharedData.model("stories260K.gguf"));
        long secondOffsetField;
        try (GGUFFile f = GGUFFile.read(file)) {
            // find the offset field of the second tensor info: it follows its name, dims and type
            GGUFTensorInfo second = f.tensorList().get(1);
            byte[] name = second.name().getBytes();
            int at = indexOf(file, name);
            secondOffsetField = at + name.length + 4 + 8L * second.dims().length + 4;
        }
        // point the second tensor at the first tensor's data
        for (int i = 0; i < 8; i++) file[(int) secondOffsetField + i] = 0;
        ModelFormatException e = loadFails(file);
        assertTrue(e.getMessage().contains("overlap"), e.getMessage());
    }

    /** Seeded mutations of real fixtures, in headers and in tensor data, within a bounded time. */
    @Test
    void mutationFuzz() throws Exception {
        String[] fixtures = {"stories260K.gguf", "syn-llama3-bpe-Q4_0.gguf", "syn-qwen2-bpe-Q4_K_M.gguf", "syn-phi3-spm-Q4_0.gguf", "syn-llama2-spm-Q6_K.gguf"};
        // longer runs: -Denclave.fuzz.iterations=N -Denclave.fuzz.seed=S -Denclave.fuzz.seconds=T
        SplittableRandom rnd = new SplittableRandom(Long.getLong("enclave.fuzz.seed", 20261124));
        long deadline = System.nanoTime() + Long.getLong("enclave.fuzz.seconds", 20) * 1_000_000_000L;
        int iterations = Integer.getInteger("enclave.fuzz.iterations", 600);
        int runs = 0;
        for (int iter = 0; iter < iterations && System.nanoTime() < deadline; iter++) {
            byte[] original = Files.readAllBytes(SharedData.model(fixtures[iter % fixtures.length]));
            int header;
            try (GGUFFile f = GGUFFile.read(original)) {
                header = (int) f.dataStart();
            }
            byte[] b = original.clone();
            int flips = 1 + rnd.nextInt(6);
            for (int k = 0; k < flips; k++) {
                int at = rnd.nextInt(4) == 0 ? header + rnd.nextInt(b.length - header) : rnd.nextInt(header);
                b[at] = switch (rnd.nextInt(4)) {
                    case 0 -> (byte) rnd.nextInt(256);
                    case 1 -> (byte) 0xFF;
                    case 2 -> (byte) 0x7E; // high byte of a half NaN/huge value
                    default -> (byte) (b[at] ^ (1 << rnd.nextInt(8)));
                };
            }
            try (TransformerModel m = TransformerModel.load("fuzz", GGUFFile.read(b))) {
                int[] prompt = m.tokenizer().encode("Once upon a time", true, false);
                InferenceState s = m.newState(prompt.length + 1);
                m.ingest(s, prompt);
            } catch (ModelFormatException expected) {
                assertTrue(expected.getMessage() != null && !expected.getMessage().isBlank());
            } catch (IllegalStateException kvTooLarge) {
                assertTrue(kvTooLarge.getMessage().contains("KV cache"), kvTooLarge.getMessage());
            }
            runs++;
        }
        assertTrue(runs >= 50, "only " + runs + " fuzz runs");
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }
}
