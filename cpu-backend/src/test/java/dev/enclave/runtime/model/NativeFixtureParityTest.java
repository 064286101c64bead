package dev.enclave.runtime.model;

/**
 * The fixtures' parity with the native kernels: Q4_0 and Q8_0 products run in C, and the default route must still
 * track llama.cpp's logits and greedy tokens as closely as the Java route does (the float route is unchanged).
 */
class NativeFixtureParityTest extends FixtureParityTest {
}
