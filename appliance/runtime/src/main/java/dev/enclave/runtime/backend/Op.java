package dev.enclave.runtime.backend;

/** The layer operations of {@link Backend}, for {@link Backend#supportsOp}. */
public enum Op {
    EMBED, RMSNORM, MATMUL, ADD_BIAS, ROPE, KV_WRITE, ATTENTION, GATED_ACTIVATION, ADD, GATHER_ROWS, SOFTMAX
}
