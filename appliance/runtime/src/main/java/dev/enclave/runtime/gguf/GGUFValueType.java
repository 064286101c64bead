package dev.enclave.runtime.gguf;

/** The metadata value types of the GGUF format, by their on-disk id. */
public enum GGUFValueType {
    UINT8(1), INT8(1), UINT16(2), INT16(2), UINT32(4), INT32(4), FLOAT32(4), BOOL(1), STRING(-1), ARRAY(-1),
    UINT64(8), INT64(8), FLOAT64(8);

    /** Fixed byte width, or -1 for variable-length values. */
    public final int width;

    GGUFValueType(int width) {
        this.width = width;
    }

    public static GGUFValueType fromId(int id) {
        GGUFValueType[] all = values();
        return id >= 0 && id < all.length ? all[id] : null;
    }
}
