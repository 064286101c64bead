package dev.enclave.runtime.model;

/** Decoding through the native kernels allocates nothing per token either (native buffers are reused). */
class NativeDecodeAllocationTest extends DecodeAllocationTest {
}
