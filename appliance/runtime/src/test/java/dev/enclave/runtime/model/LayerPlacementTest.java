package dev.enclave.runtime.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.SharedData;
import dev.enclave.runtime.backend.Backend;
import dev.enclave.runtime.backend.Backends;
import dev.enclave.runtime.backend.DeviceBuffer;
import dev.enclave.runtime.backend.KvStorage;
import dev.enclave.runtime.backend.Op;
import dev.enclave.runtime.backend.StepBatch;
import dev.enclave.runtime.backend.Weight;
import dev.enclave.runtime.backend.WeightPreparer;
import dev.enclave.runtime.backend.cpu.CpuBackend;
import dev.enclave.runtime.backend.reference.ReferenceBackend;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.serve.ContinuousBatchScheduler;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Layer-by-layer placement (partial offload): a backend that lacks a layer's weight type leaves the layer to the next
 * backend of the order, and the hidden state crosses once per split and step. The second device here is the reference
 * backend limited to Q4_K: in this Q4_K_M file layer 0 is all Q4_K, layer 1 holds Q6_K tensors, and the output matrix
 * is Q6_K.
 */
class LayerPlacementTest {

    private static final Path MODEL = SharedData.model("syn-llama2-spm-Q4_K_M.gguf");
    private static final RuntimeOptions FLOAT = RuntimeOptions.defaults().withActivations(ActivationPrecision.FLOAT).withWarmup(false);

    @Test
    void layersALackedTypeGoToTheNextBackendWithOneTransferPerSplit() throws Exception {
        CountingBackend device = new CountingBackend(new ReferenceBackend(EnumSet.of(GGMLType.F32, GGMLType.Q4_K)));
        CpuBackend cpu = CpuBackend.instance();
        int[] prompt = {1, 450, 496, 173, 170, 432, 204, 97};
        float[] splitLogits;
        float[] cpuLogits;
        try (TransformerModel split = TransformerModel.load(MODEL, FLOAT, List.of(device, cpu));
             TransformerModel whole = TransformerModel.load(MODEL, FLOAT, List.of(cpu))) {
            assertEquals(Map.of("device", 1, "cpu", 1), split.placement().layers());
            assertEquals("device", split.placement().backend());
            assertTrue(split.placement().split());
            assertEquals("device 1 + cpu 1", split.placement().toString());
            assertEquals(Map.of("cpu", 2), whole.placement().layers());

            InferenceState a = split.newState(32), b = whole.newState(32);
            int before = device.downloads;
            splitLogits = split.ingest(a, prompt).clone();
            cpuLogits = whole.ingest(b, prompt).clone();
            assertEquals(1, device.downloads - before, "one step, one crossing of the hidden state");
            assertClose(cpuLogits, splitLogits, "prompt");
            for (int step = 0; step < 5; step++) {
                int next = argmax(cpuLogits);
                before = device.downloads;
                splitLogits = split.forward(a, next).clone();
                cpuLogits = whole.forward(b, next).clone();
                assertEquals(1, device.downloads - before, "decode step " + step);
                assertClose(cpuLogits, splitLogits, "decode step " + step);
            }

            // the engine over a split model: batched steps of several sequences, KV blocks on both devices
            try (ContinuousBatchScheduler engine = new ContinuousBatchScheduler(split, new ContinuousBatchScheduler.Settings(4, 8, 32, 16, 4L << 20, 0))) {
                var one = engine.submit(new GenerationRequest(prompt, 6, new dev.enclave.runtime.sampling.GreedySampler(), List.of(), true), dev.enclave.runtime.generate.TokenListener.NONE);
                var two = engine.submit(new GenerationRequest(prompt, 6, new dev.enclave.runtime.sampling.GreedySampler(), List.of(), true), dev.enclave.runtime.generate.TokenListener.NONE);
                int[] t1 = one.result().get().tokens(), t2 = two.result().get().tokens();
                assertEquals(6, t1.length);
                assertEquals(java.util.Arrays.toString(t1), java.util.Arrays.toString(t2), "the same prompt, greedy: the same tokens");
                assertEquals(argmax(whole.ingest(whole.newState(32), prompt)), t1[0], "first token as the CPU alone picks it");
                assertEquals(Map.of("device", 1, "cpu", 1), engine.placement().layers());
            }
        }
    }

    @Test
    void aNamedBackendMustBeAvailableAndAutoFollowsTheOrder() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Backends.order(RuntimeOptions.defaults().withBackend("opencl")));
        assertTrue(e.getMessage().contains("backend 'opencl' is not available") && e.getMessage().contains("cpu"), e.getMessage());
        List<Backend> auto = Backends.order(RuntimeOptions.defaults().withBackendOrder(List.of("npu", "opencl", "cpu")));
        assertEquals("cpu", auto.getLast().name(), "the CPU comes last and takes what others cannot run");
        assertEquals("cpu", Backends.order(RuntimeOptions.defaults().withBackend("cpu")).getFirst().name());
        assertEquals(3, Backends.order(RuntimeOptions.defaults().withThreads(3)).getLast() instanceof CpuBackend c ? c.threads() : -1,
                "the CPU backend has the options' threads");
    }

    @Test
    void aLayerNoBackendRunsIsAClearLoadError() {
        Backend q8only = new ReferenceBackend(EnumSet.of(GGMLType.F32, GGMLType.Q8_0));
        var e = assertThrows(dev.enclave.runtime.ModelFormatException.class, () -> TransformerModel.load(MODEL, FLOAT, List.of(q8only)));
        assertTrue(e.getMessage().contains("no backend runs a layer"), e.getMessage());
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static void assertClose(float[] want, float[] got, String what) {
        double max = 0, scale = 0;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i] - got[i]));
            scale = Math.max(scale, Math.abs(want[i]));
        }
        assertTrue(max <= 1e-4 * Math.max(1, scale), what + ": split vs CPU max difference " + max + " (largest logit " + scale + ")");
    }

    /** A second device: the reference backend under another name, counting the hidden state's trips to the host. */
    static final class CountingBackend implements Backend {
        final Backend inner;
        int downloads;

        CountingBackend(Backend inner) {
            this.inner = inner;
        }

        @Override public String name() { return "device"; }
        @Override public boolean isAvailable() { return true; }
        @Override public boolean supportsOp(Op op, GGMLType type) { return inner.supportsOp(op, type); }
        @Override public WeightPreparer weights(GGUFFile gguf, Path file, RuntimeOptions options) { return inner.weights(gguf, file, options); }
        @Override public DeviceBuffer allocate(int floats) { return inner.allocate(floats); }
        @Override public KvStorage allocateKv(int kvDim, int headDim, int positions, dev.enclave.runtime.backend.KvType type) { return inner.allocateKv(kvDim, headDim, positions, type); }
        @Override public void upload(float[] src, int srcOff, DeviceBuffer dst, int dstOff, int n) { inner.upload(src, srcOff, dst, dstOff, n); }
        @Override public void download(DeviceBuffer src, int srcOff, float[] dst, int dstOff, int n) {
            downloads++;
            inner.download(src, srcOff, dst, dstOff, n);
        }
        @Override public void embed(Weight table, StepBatch step, DeviceBuffer out, int outStride, int dim, float scale) { inner.embed(table, step, out, outStride, dim, scale); }
        @Override public void rmsnorm(DeviceBuffer out, int outOff, int outStride, DeviceBuffer x, int xOff, int xStride, Weight w, int tokens, int heads, int n, float eps) {
            inner.rmsnorm(out, outOff, outStride, x, xOff, xStride, w, tokens, heads, n, eps);
        }
        @Override public void matmul(Weight w, DeviceBuffer x, int xOff, int xStride, DeviceBuffer out, int outOff, int outStride, int rows, int cols, int tokens) {
            inner.matmul(w, x, xOff, xStride, out, outOff, outStride, rows, cols, tokens);
        }
        @Override public void addBias(DeviceBuffer x, int off, int stride, Weight bias, int n, int tokens) { inner.addBias(x, off, stride, bias, n, tokens); }
        @Override public void rope(DeviceBuffer x, int off, int stride, int heads, int headDim, StepBatch step, float[] invFreq, boolean neox) {
            inner.rope(x, off, stride, heads, headDim, step, invFreq, neox);
        }
        @Override public void kvWrite(KvStorage kv, DeviceBuffer k, int kOff, int kStride, DeviceBuffer v, int vOff, int vStride, int kvDim, StepBatch step) {
            inner.kvWrite(kv, k, kOff, kStride, v, vOff, vStride, kvDim, step);
        }
        @Override public void attention(KvStorage kv, DeviceBuffer q, int qOff, int qStride, DeviceBuffer out, int outOff, int outStride, StepBatch step,
                                        int heads, int kvHeads, int headDim, float scale, float cap, int window) {
            inner.attention(kv, q, qOff, qStride, out, outOff, outStride, step, heads, kvHeads, headDim, scale, cap, window);
        }
        @Override public void gatedActivation(DeviceBuffer gate, int gOff, int gStride, DeviceBuffer up, int uOff, int uStride, int n, int tokens, boolean gelu) {
            inner.gatedActivation(gate, gOff, gStride, up, uOff, uStride, n, tokens, gelu);
        }
        @Override public void add(DeviceBuffer x, int xOff, int xStride, DeviceBuffer y, int yOff, int yStride, int n, int tokens) { inner.add(x, xOff, xStride, y, yOff, yStride, n, tokens); }
        @Override public void gatherRows(DeviceBuffer src, int srcStride, int[] rows, int count, DeviceBuffer dst, int dstStride, int n) {
            inner.gatherRows(src, srcStride, rows, count, dst, dstStride, n);
        }
        @Override public void softmax(DeviceBuffer x, int off, int stride, int n, int rows) { inner.softmax(x, off, stride, n, rows); }
    }
}
