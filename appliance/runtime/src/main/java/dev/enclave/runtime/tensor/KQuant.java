package dev.enclave.runtime.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Helpers shared by the K-quant formats. */
final class KQuant {

    private KQuant() {
    }

    /**
     * ggml's get_scale_min_k4: the j-th (0..7) 6-bit scale and min from the 12 packed bytes at {@code q}. Returns
     * {@code scale | min << 8}.
     */
    static int scaleMin(MemorySegment data, long q, int j) {
        int d;
        int m;
        if (j < 4) {
            d = b(data, q + j) & 63;
            m = b(data, q + j + 4) & 63;
        } else {
            d = (b(data, q + j + 4) & 0xF) | ((b(data, q + j - 4) >>> 6) << 4);
            m = (b(data, q + j + 4) >>> 4) | ((b(data, q + j) >>> 6) << 4);
        }
        return d | (m << 8);
    }

    private static int b(MemorySegment data, long at) {
        return data.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
    }

    /** The same from a byte array, the 12 packed bytes at {@code q}. */
    static int scaleMin(byte[] data, int q, int j) {
        int d;
        int m;
        if (j < 4) {
            d = (data[q + j] & 0xFF) & 63;
            m = (data[q + j + 4] & 0xFF) & 63;
        } else {
            d = (data[q + j + 4] & 0xF) | (((data[q + j - 4] & 0xFF) >>> 6) << 4);
            m = ((data[q + j + 4] & 0xFF) >>> 4) | (((data[q + j] & 0xFF) >>> 6) << 4);
        }
        return d | (m << 8);
    }
}
