package dev.enclave.benchmarks;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.quant.Quantizer;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tensor.Int8RowsTensor;
import dev.enclave.runtime.tensor.Int8RowGroupTensor;
import dev.enclave.runtime.tensor.Q4RowGroupTensor;
import dev.enclave.runtime.tensor.Q6RowGroupTensor;
import dev.enclave.runtime.tensor.Q8RowGroupTensor;
import dev.enclave.runtime.tensor.Q8Activations;
import dev.enclave.runtime.tensor.RowGroupTensor;
import dev.enclave.runtime.tensor.Q6_KTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One thread, one weight matrix of a real layer's size (ffn_up of Llama-3.2-1B: 8192 x 2048), times one activation
 * vector: the decode-step kernel of every type. The "weightBytes" counter is weight bytes (in the file's encoding)
 * multiplied per second. {@code *_X32} are the integer route on tensors repacked in 32-row groups (what the model runs
 * on AVX-512 by default; Q6_K at 6 bits for the vocabulary matrix, {@code Q6_K_INT8_X32} as int8 for layers): {@code matvec} quantizes the vector and runs the one-token kernel; {@code matmul4} runs the
 * four-token kernel and counts four tokens' worth of bytes (float-route types multiply the four one by one).
 *
 * <pre>
 * ./mvnw -Pjmh -q package -pl appliance/benchmarks -am -DskipTests
 * java --add-modules jdk.incubator.vector -jar appliance/benchmarks/target/benchmarks.jar MatmulBenchmark
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class MatmulBenchmark {

    @Param({"F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "Q6_K_INT8", "Q8_0_X32", "Q4_0_X32", "Q4_K_X32", "Q6_K_X32", "Q6_K_INT8_X32"})
    public String type;

    static final int ROWS = 8192;
    static final int COLS = 2048;

    private final Arena arena = Arena.ofShared();
    private FloatTensor w;
    private RowGroupTensor grouped;
    private final Q8Activations acts = new Q8Activations();
    private float[] x;
    private float[] out;
    private long bytes;

    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Bytes {
        /** Reported by JMH as a rate: weight bytes read per second. */
        public long weightBytes;

        @Setup(Level.Iteration)
        public void clear() {
            weightBytes = 0;
        }
    }

    @Setup
    public void setUp() {
        boolean int8 = type.equals("Q6_K_INT8");
        boolean int8x32 = type.equals("Q6_K_INT8_X32");
        boolean x32 = type.endsWith("_X32");
        GGMLType t = int8 || int8x32 ? GGMLType.Q6_K : GGMLType.valueOf(x32 ? type.substring(0, type.length() - 4) : type);
        SplittableRandom r = new SplittableRandom(1);
        float[] row = new float[COLS];
        bytes = t.byteSize((long) ROWS * COLS);
        MemorySegment data = arena.allocate(bytes, 64);
        long rowBytes = t.byteSize(COLS);
        for (int i = 0; i < ROWS; i++) {
            for (int j = 0; j < COLS; j++) row[j] = (float) r.nextDouble(-0.04, 0.04);
            MemorySegment.copy(MemorySegment.ofArray(Quantizer.quantize(t, row, COLS)), 0, data, i * rowBytes, rowBytes);
        }
        w = FloatTensor.of(t, data, (long) ROWS * COLS);
        if (int8) w = Int8RowsTensor.fromQ6_K((Q6_KTensor) w, arena);
        if (x32) {
            grouped = int8x32 ? Int8RowGroupTensor.repack((Q6_KTensor) w, ROWS, COLS, arena)
                    : t == GGMLType.Q6_K ? Q6RowGroupTensor.repack((Q6_KTensor) w, ROWS, COLS, arena)
                    : t == GGMLType.Q8_0 ? Q8RowGroupTensor.repack(w, ROWS, COLS, arena)
                    : Q4RowGroupTensor.repack(w, ROWS, COLS, arena);
        }
        x = new float[4 * COLS];
        for (int j = 0; j < x.length; j++) x[j] = (float) r.nextDouble(-1, 1);
        out = new float[4 * ROWS];
    }

    @Benchmark
    public float[] matvec(Bytes counter) {
        if (grouped != null) {
            acts.quantize(x, 0, COLS, COLS, 1);
            grouped.multiply(acts, 0, 0, grouped.groups(), out, 0);
        } else {
            for (int i = 0; i < ROWS; i++) out[i] = w.dot((long) i * COLS, x, 0, COLS);
        }
        counter.weightBytes += bytes;
        return out;
    }

    @Benchmark
    public float[] matmul4(Bytes counter) {
        if (grouped != null) {
            acts.quantize(x, 0, COLS, COLS, 4);
            grouped.multiply4(acts, 0, 0, grouped.groups(), out, 0, ROWS);
        } else {
            for (int i = 0; i < ROWS; i++) w.dot4((long) i * COLS, x, 0, COLS, 2 * COLS, 3 * COLS, COLS, out, i, ROWS);
        }
        counter.weightBytes += 4 * bytes;
        return out;
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }
}
