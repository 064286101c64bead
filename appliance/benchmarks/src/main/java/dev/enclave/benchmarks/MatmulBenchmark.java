package dev.enclave.benchmarks;

import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.quant.Quantizer;
import dev.enclave.runtime.tensor.FloatTensor;
import dev.enclave.runtime.tensor.Int8RowsTensor;
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
 * vector: the decode-step kernel of every type. The "gbPerS" counter is weight bytes read per second.
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

    @Param({"F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", "Q6_K_INT8"})
    public String type;

    static final int ROWS = 8192;
    static final int COLS = 2048;

    private final Arena arena = Arena.ofShared();
    private FloatTensor w;
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
        GGMLType t = int8 ? GGMLType.Q6_K : GGMLType.valueOf(type);
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
        x = new float[COLS];
        for (int j = 0; j < COLS; j++) x[j] = (float) r.nextDouble(-1, 1);
        out = new float[ROWS];
    }

    @Benchmark
    public float[] matvec(Bytes counter) {
        for (int i = 0; i < ROWS; i++) out[i] = w.dot((long) i * COLS, x, 0, COLS);
        counter.weightBytes += bytes;
        return out;
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }
}
