package dev.enclave.server.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

/** A KV cache the heap cannot hold is refused with what to change (it once ended the process without a word). */
class ModelServiceTest {

    @Test
    void aKvPoolLargerThanTheHeapIsRefusedPlainly() {
        long tooMuchMb = 2 * (Runtime.getRuntime().maxMemory() >> 20) + 1024;
        var e = assertThrows(IllegalStateException.class, () -> new ModelService(Optional.empty(), 8, 64, 64, tooMuchMb, 16, 600,
                Optional.empty(), "false", 2, 8, "ngram", 8));
        assertTrue(e.getMessage().contains("enclave.scheduler.kv-memory-mb") && e.getMessage().contains("-Xmx"), e.getMessage());
    }
}
