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
                Optional.empty(), "false", 2, 8, "ngram", 8, Optional.empty(), false, 4, false));
        assertTrue(e.getMessage().contains("enclave.scheduler.kv-memory-mb") && e.getMessage().contains("-Xmx"), e.getMessage());
    }

    @Test
    void theEngineGuessesWithTheConfiguredDraftModel() throws Exception {
        String model = dev.enclave.server.cli.CliContractTest.embeddedTarget().toString();
        String draft = dev.enclave.server.cli.CliContractTest.shared("tinystories-hd64-Q4_0.gguf").toString();
        ModelService m = new ModelService(Optional.of(model), 8, 64, 64, 64, 16, 600, Optional.empty(), "false", 2, 8, "draft", 4, Optional.of(draft), false, 4, false);
        try {
            var tokens = m.current().model().tokenizer().encode("Once upon a time, there was a little girl named Lily. She", true, false);
            var req = new dev.enclave.runtime.generate.GenerationRequest(tokens, 60, dev.enclave.runtime.sampling.Sampler.of(0f, 1f, 0),
                    java.util.List.of(), true);
            m.current().engine().submit(req, dev.enclave.runtime.generate.TokenListener.NONE).result().get(60, java.util.concurrent.TimeUnit.SECONDS);
            assertTrue(m.current().engine().metrics().specAccepted() > 20, "the draft model's guesses: " + m.current().engine().metrics());
        } finally {
            m.shutdown(null);
        }
        var missing = assertThrows(IllegalArgumentException.class, () -> new ModelService(Optional.of(model), 8, 64, 64, 64, 16, 600,
                Optional.empty(), "false", 2, 8, "draft", 4, Optional.empty(), false, 4, false));
        assertTrue(missing.getMessage().contains("enclave.scheduler.draft-model"), missing.getMessage());
        // a draft model with another vocabulary is set aside: the engine guesses by n-grams and serves
        String other = dev.enclave.server.cli.CliContractTest.shared("stories260K.gguf").toString();
        ModelService fallback = new ModelService(Optional.of(model), 8, 64, 64, 64, 16, 600, Optional.empty(), "false", 2, 8, "draft", 4, Optional.of(other), false, 4, false);
        try {
            var tokens = fallback.current().model().tokenizer().encode("Tom had a red ball.", true, false);
            var r = fallback.current().engine().submit(new dev.enclave.runtime.generate.GenerationRequest(tokens, 8,
                    dev.enclave.runtime.sampling.Sampler.of(0f, 1f, 0), java.util.List.of(), true), dev.enclave.runtime.generate.TokenListener.NONE)
                    .result().get(60, java.util.concurrent.TimeUnit.SECONDS);
            assertTrue(r.tokens().length == 8);
        } finally {
            fallback.shutdown(null);
        }
    }
}
