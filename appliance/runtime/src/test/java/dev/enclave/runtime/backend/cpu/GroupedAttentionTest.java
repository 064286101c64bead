package dev.enclave.runtime.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.runtime.backend.cpu.CpuBackend;
import dev.enclave.runtime.kv.BlockTable;
import dev.enclave.runtime.kv.KvPool;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A KV head's group of query heads at a time gives the same floats as one head at a time, for group sizes on both
 * sides of the four-head path and head sizes with and without a part shorter than a vector, and agrees with a plain
 * double-precision softmax attention. (Equal to rounding, not bit for bit: the Vector API leaves the order of a
 * float reduction to the JIT, and the two paths may be compiled at different tiers while a test runs.)
 */
class GroupedAttentionTest {

    @Test
    void groupsMatchHeadAtATimeAndDoublePrecision() {
        CpuBackend ops = CpuBackend.instance();
        Random rnd = new Random(7);
        for (int heads : new int[] {1, 2, 3, 4, 5, 7, 8}) {
            for (int headDim : new int[] {8, 48, 64, 80, 128}) {
                int kvHeads = 2;
                int kvDim = kvHeads * headDim;
                KvPool pool = new KvPool(1, kvDim, 16, 64);
                BlockTable table = new BlockTable(pool);
                int positions = 1 + rnd.nextInt(300);
                assertTrue(table.ensure(positions));
                for (int t = 0; t < positions; t++) {
                    int off = table.offset(t);
                    for (int i = 0; i < kvDim; i++) {
                        dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).keys[off + i] = (float) rnd.nextGaussian();
                        dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).values[off + i] = (float) rnd.nextGaussian();
                    }
                }
                int g = 1; // the second KV head: offsets inside the rows matter
                float[] q = new float[heads * headDim + 5];
                for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextGaussian();
                int qOff = 5;
                int first = positions > 10 ? 3 : 0; // a sliding window's start
                int pos = positions - 1;
                float scale = (float) (1 / Math.sqrt(headDim));
                int stride = positions + 11;

                float[] grouped = new float[heads * headDim];
                GroupedAttention.attend(ops, dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).keys, dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).values, table, g * headDim, q, qOff, grouped, 0,
                        heads, headDim, first, pos, scale, 0f, new float[heads * stride], 0, stride, new int[positions]);
                float[] single = new float[heads * headDim];
                for (int h = 0; h < heads; h++) {
                    GroupedAttention.attend(ops, dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).keys, dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).values, table, g * headDim, q, qOff + h * headDim,
                            single, h * headDim, 1, headDim, first, pos, scale, 0f, new float[stride], 0, stride, new int[positions]);
                }
                for (int i = 0; i < grouped.length; i++) {
                    assertEquals(single[i], grouped[i], 1e-5f * Math.max(1f, Math.abs(single[i])),
                            "heads " + heads + ", head size " + headDim + ", element " + i);
                }
                for (int h = 0; h < heads; h++) {
                    double[] w = new double[pos - first + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t = first; t <= pos; t++) {
                        double s = 0;
                        for (int i = 0; i < headDim; i++) s += (double) q[qOff + h * headDim + i] * dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).keys[table.offset(t) + g * headDim + i];
                        w[t - first] = s * scale;
                        max = Math.max(max, w[t - first]);
                    }
                    double sum = 0;
                    for (int k = 0; k < w.length; k++) sum += w[k] = Math.exp(w[k] - max);
                    for (int i = 0; i < headDim; i++) {
                        double o = 0;
                        for (int t = first; t <= pos; t++) o += w[t - first] / sum * dev.enclave.runtime.backend.HostKvStorage.of(pool.layer(0)).values[table.offset(t) + g * headDim + i];
                        assertEquals(o, grouped[h * headDim + i], 1e-4, "heads " + heads + ", head size " + headDim);
                    }
                }
            }
        }
    }
}
