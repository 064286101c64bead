package dev.enclave.runtime.backend.reference;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.HostBackend;
import dev.enclave.runtime.backend.DeviceBuffer;
import dev.enclave.runtime.backend.HostBuffer;
import dev.enclave.runtime.backend.HostKvStorage;
import dev.enclave.runtime.backend.KvStorage;
import dev.enclave.runtime.backend.Op;
import dev.enclave.runtime.backend.StepBatch;
import dev.enclave.runtime.backend.Weight;
import dev.enclave.runtime.backend.WeightPreparer;
import dev.enclave.runtime.gguf.GGMLType;
import dev.enclave.runtime.gguf.GGUFFile;
import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.tensor.FloatTensor;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Set;

/**
 * The runtime's reference implementation of every {@link Backend} operation: one thread, scalar loops in the order
 * the interface describes them, sums in double, weights read value by value through the ggml decoders
 * ({@link FloatTensor#copyTo}). Slow and plain on purpose: {@code BackendConformanceTest} holds every backend against
 * it. It can be limited to some weight types, which makes it a second device for tests of layer-by-layer placement.
 */
public final class ReferenceBackend extends HostBackend {

    private final Set<GGMLType> types;

    /** Every type the runtime reads. */
    public ReferenceBackend() {
        this(EnumSet.allOf(GGMLType.class));
    }

    /** Only matrices and vectors of {@code types}: layers holding others go to the next backend. */
    public ReferenceBackend(Set<GGMLType> types) {
        this.types = EnumSet.copyOf(types);
    }

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public boolean isAvailable() {
        return true;
    }

    @Override
    public boolean supportsOp(Op op, GGMLType type) {
        return type == null || types.contains(type);
    }

    @Override
    public WeightPreparer weights(GGUFFile gguf, Path file, RuntimeOptions options) {
        return new WeightPreparer() {
            @Override
            public Weight prepare(String name, FloatTensor source, int rows, int cols) {
                return source;
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public void embed(Weight table, StepBatch step, DeviceBuffer out, int outStride, int dim, float scale) {
        float[] o = HostBuffer.of(out);
        for (int t = 0; t < step.tokens; t++) {
            ((FloatTensor) table).copyTo((long) step.token[t] * dim, o, t * outStride, dim);
            for (int i = 0; i < dim; i++) o[t * outStride + i] *= scale;
        }
    }

    @Override
    public void rmsnorm(DeviceBuffer out, int outOff, int outStride, DeviceBuffer x, int xOff, int xStride, Weight weight,
                        int tokens, int heads, int n, float eps) {
        float[] o = HostBuffer.of(out), in = HostBuffer.of(x);
        FloatTensor w = (FloatTensor) weight;
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                int xi = xOff + t * xStride + h * n, oi = outOff + t * outStride + h * n;
                double ss = 0;
                for (int i = 0; i < n; i++) ss += (double) in[xi + i] * in[xi + i];
                double scale = 1.0 / Math.sqrt(ss / n + eps);
                for (int i = 0; i < n; i++) o[oi + i] = (float) (w.getFloat(i) * (scale * in[xi + i]));
            }
        }
    }

    @Override
    public void matmul(Weight w, DeviceBuffer x, int xOff, int xStride, DeviceBuffer out, int outOff, int outStride,
                       int rows, int cols, int tokens) {
        FloatTensor t = (FloatTensor) w;
        float[] in = HostBuffer.of(x), o = HostBuffer.of(out);
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            t.copyTo((long) r * cols, row, 0, cols);
            for (int j = 0; j < tokens; j++) {
                double s = 0;
                for (int i = 0; i < cols; i++) s += (double) row[i] * in[xOff + j * xStride + i];
                o[outOff + j * outStride + r] = (float) s;
            }
        }
    }

    @Override
    public void addBias(DeviceBuffer x, int off, int stride, Weight bias, int n, int tokens) {
        float[] v = HostBuffer.of(x);
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) v[off + t * stride + i] += ((FloatTensor) bias).getFloat(i);
        }
    }

    @Override
    public void rope(DeviceBuffer x, int off, int stride, int heads, int headDim, StepBatch step, float[] invFreq, boolean neox) {
        float[] v = HostBuffer.of(x);
        int half = invFreq.length;
        for (int t = 0; t < step.tokens; t++) {
            for (int h = 0; h < heads; h++) {
                int o = off + t * stride + h * headDim;
                for (int i = 0; i < half; i++) {
                    double theta = step.pos[t] * (double) invFreq[i];
                    int i0 = neox ? o + i : o + 2 * i;
                    int i1 = neox ? o + i + half : o + 2 * i + 1;
                    double a = v[i0], b = v[i1];
                    v[i0] = (float) (a * Math.cos(theta) - b * Math.sin(theta));
                    v[i1] = (float) (a * Math.sin(theta) + b * Math.cos(theta));
                }
            }
        }
    }

    @Override
    public void kvWrite(KvStorage kv, DeviceBuffer k, int kOff, int kStride, DeviceBuffer v, int vOff, int vStride, int kvDim,
                        StepBatch step) {
        HostKvStorage s = HostKvStorage.of(kv);
        for (int t = 0; t < step.tokens; t++) {
            s.write(step.slot[t], step.pos[t], HostBuffer.of(k), kOff + t * kStride, HostBuffer.of(v), vOff + t * vStride);
            if (s.window > 0) {
                step.tables[step.sequence[t]].recent(s, s.window, kvDim).put(step.pos[t], HostBuffer.of(k), kOff + t * kStride, HostBuffer.of(v), vOff + t * vStride);
            }
        }
    }

    @Override
    public void attention(KvStorage kv, DeviceBuffer q, int qOff, int qStride, DeviceBuffer out, int outOff, int outStride,
                          StepBatch step, int heads, int kvHeads, int headDim, float scale, float cap, int window) {
        HostKvStorage s = HostKvStorage.of(kv);
        float[] qs = HostBuffer.of(q), o = HostBuffer.of(out);
        int kvDim = s.kvDim();
        int group = heads / kvHeads;
        for (int t = 0; t < step.tokens; t++) {
            BlockTable table = step.tables[step.sequence[t]];
            int pos = step.pos[t];
            int first = window > 0 ? Math.max(0, pos - window + 1) : 0;
            double[] w = new double[pos - first + 1];
            // the positions' keys and values as floats: the stored ones, or decoded (and turned back) from the type
            float[][] keys = new float[w.length][], values = new float[w.length][];
            for (int p = first; p <= pos; p++) {
                keys[p - first] = new float[kvDim];
                values[p - first] = new float[kvDim];
                dev.enclave.runtime.kv.RecentRows recent = s.window > 0 && p > pos - s.window ? table.recentIfAny(s) : null;
                if (recent != null && recent.has(p)) {
                    // the recent window: the rows as they were written
                    System.arraycopy(recent.keys(), recent.offset(p), keys[p - first], 0, kvDim);
                    System.arraycopy(recent.values(), recent.offset(p), values[p - first], 0, kvDim);
                    continue;
                }
                s.readSlot(table.slot(p), keys[p - first], values[p - first]);
                if (s.keysPositionFree()) for (int h = 0; h < kvHeads; h++) s.code.rope(keys[p - first], h * headDim, p);
            }
            for (int h = 0; h < heads; h++) {
                int kvOff = (h / group) * headDim;
                int qi = qOff + t * qStride + h * headDim;
                double max = Double.NEGATIVE_INFINITY;
                for (int p = first; p <= pos; p++) {
                    double dot = 0;
                    for (int i = 0; i < headDim; i++) dot += (double) qs[qi + i] * keys[p - first][kvOff + i];
                    double score = dot * scale;
                    if (cap > 0) score = Math.tanh(score / cap) * cap;
                    w[p - first] = score;
                    max = Math.max(max, score);
                }
                double sum = 0;
                for (int p = 0; p < w.length; p++) sum += w[p] = Math.exp(w[p] - max);
                for (int i = 0; i < headDim; i++) {
                    double acc = 0;
                    for (int p = first; p <= pos; p++) acc += w[p - first] / sum * values[p - first][kvOff + i];
                    o[outOff + t * outStride + h * headDim + i] = (float) acc;
                }
            }
        }
    }

    @Override
    public void gatedActivation(DeviceBuffer gate, int gOff, int gStride, DeviceBuffer up, int uOff, int uStride, int n,
                                int tokens, boolean gelu) {
        float[] g = HostBuffer.of(gate), u = HostBuffer.of(up);
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) {
                double x = g[gOff + t * gStride + i];
                double act = gelu ? 0.5 * x * (1.0 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) : x / (1.0 + Math.exp(-x));
                g[gOff + t * gStride + i] = (float) (act * u[uOff + t * uStride + i]);
            }
        }
    }

    @Override
    public void add(DeviceBuffer x, int xOff, int xStride, DeviceBuffer y, int yOff, int yStride, int n, int tokens) {
        float[] a = HostBuffer.of(x), b = HostBuffer.of(y);
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) a[xOff + t * xStride + i] += b[yOff + t * yStride + i];
        }
    }

    @Override
    public void gatherRows(DeviceBuffer src, int srcStride, int[] rows, int count, DeviceBuffer dst, int dstStride, int n) {
        for (int i = 0; i < count; i++) {
            for (int k = 0; k < n; k++) HostBuffer.of(dst)[i * dstStride + k] = HostBuffer.of(src)[rows[i] * srcStride + k];
        }
    }

    @Override
    public void softmax(DeviceBuffer x, int off, int stride, int n, int rows) {
        float[] v = HostBuffer.of(x);
        for (int r = 0; r < rows; r++) {
            int o = off + r * stride;
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) max = Math.max(max, v[o + i]);
            double sum = 0;
            for (int i = 0; i < n; i++) sum += Math.exp(v[o + i] - max);
            for (int i = 0; i < n; i++) v[o + i] = (float) (Math.exp(v[o + i] - max) / sum);
        }
    }
}
