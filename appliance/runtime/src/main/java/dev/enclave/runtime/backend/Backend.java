package dev.enclave.runtime.backend;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import java.nio.file.Path;

/**
 * A device that runs the layer operations of the runtime's one forward pass ({@code TransformerModel}): the CPU, a
 * GPU through OpenCL, ... Each operation works on memory the backend owns: weights it prepared at load
 * ({@link #weights}), a step's activations ({@link #allocate}) and the layers' part of the paged KV pool
 * ({@link #allocateKv}). Only token ids, positions and block tables go in ({@link StepBatch}); only logits come back
 * ({@link #download}). The block tables, prefix cache and copy-on-write stay in the runtime and name blocks.
 *
 * <p>Activations are rows of floats: a step's tokens are rows {@code off + t * stride} of a buffer. Every operation
 * below is checked against the runtime's reference implementation by {@code BackendConformanceTest}; a backend lists
 * what it runs in {@link #supportsOp}, and the layers it cannot run go to the next backend of the order.
 *
 * <p>Whole-model executors that sample on their own (a Qualcomm Genie dialog) are not backends: they replace the
 * scheduler as an {@code InferenceEngine}.
 */
public interface Backend {

    /** Short stable name: "cpu", "opencl", "npu", ... */
    String name();

    /** Whether the device and its drivers are present on this machine. */
    boolean isAvailable();

    /** Higher wins when several available backends can run the same layer and no order is given. */
    default int priority() {
        return 0;
    }

    /** Whether this backend runs {@code op} on weights of {@code type} (null for operations without weights). */
    boolean supportsOp(Op op, GGMLType type);

    // ---- memory ----

    /** The preparation of one model's weights for this backend, at load; the preparer owns what it makes. */
    WeightPreparer weights(GGUFFile gguf, Path file, RuntimeOptions options);

    /** A buffer of {@code floats} activations in this backend's memory, zeroed. */
    DeviceBuffer allocate(int floats);

    /**
     * One layer's keys and values for {@code positions} slots of {@code kvDim} values each (the paged pool's share),
     * heads of {@code headDim} values, stored as {@code type} says; refuses a type the backend cannot hold.
     */
    KvStorage allocateKv(int kvDim, int headDim, int positions, KvType type);

    void upload(float[] src, int srcOff, DeviceBuffer dst, int dstOff, int n);

    void download(DeviceBuffer src, int srcOff, float[] dst, int dstOff, int n);

    // ---- operations; t runs over the step's tokens (or the rows given) ----

    /** {@code out[t] = table row step.token[t] * scale}, {@code dim} values. */
    void embed(Weight table, StepBatch step, DeviceBuffer out, int outStride, int dim, float scale);

    /**
     * RMS norm of {@code tokens} rows, each made of {@code heads} vectors of {@code n} values (1 for the residual
     * stream, the head count for QK-norm): {@code out = x / sqrt(mean(x^2) + eps) * weight}; out may be x.
     */
    void rmsnorm(DeviceBuffer out, int outOff, int outStride, DeviceBuffer x, int xOff, int xStride, Weight weight,
                 int tokens, int heads, int n, float eps);

    /**
     * {@code out[t][r] = dot(w row r, x[t])} for {@code rows} rows of {@code cols} values, for {@code tokens} inputs;
     * each weight row is read once for all of them.
     */
    void matmul(Weight w, DeviceBuffer x, int xOff, int xStride, DeviceBuffer out, int outOff, int outStride,
                int rows, int cols, int tokens);

    /**
     * Matrices that read the same input (a layer's q, k and v; its gate and up): {@code out[i][t][r] = dot(w[i] row r,
     * x[t])}, {@code out[i]} from offset 0 with a stride of {@code rows[i]}. A backend may prepare (quantize) the input
     * once and run the products as one job; by default, one {@link #matmul} each.
     */
    default void matmulShared(Weight[] w, int[] rows, DeviceBuffer x, int xOff, int xStride, DeviceBuffer[] out, int cols, int tokens) {
        for (int i = 0; i < w.length; i++) matmul(w[i], x, xOff, xStride, out[i], 0, rows[i], rows[i], cols, tokens);
    }

    /** {@code x[t][i] += bias[i]} for i in [0, n). */
    void addBias(DeviceBuffer x, int off, int stride, Weight bias, int n, int tokens);

    /**
     * Rotary position embedding in place of {@code heads} heads of {@code headDim} values per token, at the token's
     * position {@code step.pos[t]}: the first {@code 2 * invFreq.length} values of each head rotate, in pairs
     * (i, i + half) for NEOX style, (2i, 2i + 1) otherwise.
     */
    void rope(DeviceBuffer x, int off, int stride, int heads, int headDim, StepBatch step, float[] invFreq, boolean neox);

    /**
     * Makes {@code kv} (one of this backend's storages) add up the attention its slots receive from now on, for
     * heavy-hitter eviction; false where this backend cannot (its storages then answer NaN).
     */
    default boolean trackAttention(KvStorage kv) {
        return false;
    }

    /** Whether {@link #shiftKeys} can rewrite this backend's KV cache in place. */
    default boolean canShiftKeys() {
        return false;
    }

    /**
     * Moves cached keys {@code delta} positions (a context shift: positions dropped before them): each of the
     * {@code count} slots' keys is turned by RoPE's angle for {@code delta}, as {@link #rope} would have turned it at
     * its new position. Values do not depend on the position and are left untouched.
     *
     * @throws UnsupportedOperationException where {@link #canShiftKeys} is false
     */
    default void shiftKeys(KvStorage kv, int[] slots, int count, int kvHeads, int headDim, float[] invFreq, boolean neox, int delta) {
        throw new UnsupportedOperationException("the " + name() + " backend cannot move its KV cache");
    }

    /**
     * Writes each token's key and value row ({@code kvDim} floats) into its KV slot {@code step.slot[t]}, encoded in
     * the storage's type.
     */
    void kvWrite(KvStorage kv, DeviceBuffer k, int kOff, int kStride, DeviceBuffer v, int vOff, int vStride, int kvDim,
                 StepBatch step);

    /**
     * Causal scaled dot-product attention of each token's {@code heads} query heads over its sequence's positions
     * [first, pos] in the paged KV ({@code first = pos - window + 1} when {@code window > 0}, else 0); query head h
     * reads KV head {@code h / (heads / kvHeads)} (GQA). Scores are scaled, capped with {@code cap * tanh(s / cap)}
     * when {@code cap > 0}, soft-maxed; the heads' outputs go to {@code out[t]}.
     */
    void attention(KvStorage kv, DeviceBuffer q, int qOff, int qStride, DeviceBuffer out, int outOff, int outStride,
                   StepBatch step, int heads, int kvHeads, int headDim, float scale, float cap, int window);

    /** {@code gate[t][i] = silu(gate[t][i]) * up[t][i]} (SwiGLU), or GELU (tanh form) when {@code gelu}. */
    void gatedActivation(DeviceBuffer gate, int gOff, int gStride, DeviceBuffer up, int uOff, int uStride, int n,
                         int tokens, boolean gelu);

    /** {@code x[t][i] += y[t][i]} (the residual add). */
    void add(DeviceBuffer x, int xOff, int xStride, DeviceBuffer y, int yOff, int yStride, int n, int tokens);

    /** {@code dst[i] = src[rows[i]]} for i in [0, count): the rows a step needs logits of. */
    void gatherRows(DeviceBuffer src, int srcStride, int[] rows, int count, DeviceBuffer dst, int dstStride, int n);

    /** In-place softmax of {@code rows} rows of {@code n} values. */
    void softmax(DeviceBuffer x, int off, int stride, int n, int rows);
}
