package dev.enclave.server.model;

import dev.enclave.runtime.RuntimeOptions;
import dev.enclave.runtime.backend.Placement;
import dev.enclave.runtime.generate.FinishReason;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.serve.EngineMetrics;
import dev.enclave.runtime.serve.EngineProvider;
import dev.enclave.runtime.serve.GenerationHandle;
import dev.enclave.runtime.serve.InferenceEngine;
import dev.enclave.runtime.tokenizer.Utf8StreamDecoder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A whole-model engine that samples on its own, as a Genie dialog does on the NPU (which is not on this machine): one
 * sequence at a time on its own thread, greedy, text streamed to the listener; no scheduler, no shared KV pool. The
 * server must serve through it when it is chosen ({@code enclave.backend=self-sampling}).
 */
public final class SelfSamplingEngine implements InferenceEngine {

    /** Registered in META-INF/services for the tests. */
    public static final class Provider implements EngineProvider {
        @Override
        public String name() {
            return "self-sampling";
        }

        @Override
        public Optional<InferenceEngine> open(TransformerModel model, RuntimeOptions options) {
            return options.backend().equals(name()) ? Optional.of(new SelfSamplingEngine(model)) : Optional.empty();
        }
    }

    private final TransformerModel model;
    private final AtomicLong generated = new AtomicLong(), completed = new AtomicLong(), prompts = new AtomicLong();

    SelfSamplingEngine(TransformerModel model) {
        this.model = model;
    }

    private final class Run implements GenerationHandle {
        final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
        volatile boolean cancelled;

        @Override
        public void cancel() {
            cancelled = true;
        }

        @Override
        public CompletableFuture<GenerationResult> result() {
            return result;
        }
    }

    @Override
    public synchronized GenerationHandle submit(GenerationRequest request, TokenListener listener) {
        Run run = new Run();
        Thread.ofPlatform().daemon().name("self-sampling").start(() -> {
            synchronized (SelfSamplingEngine.this) { // one dialog at a time, as a device session is
                long start = System.nanoTime();
                int[] prompt = request.promptTokens();
                prompts.addAndGet(prompt.length);
                InferenceState s = model.newState(prompt.length + request.maxTokens() + 1);
                float[] logits = model.ingest(s, prompt);
                Utf8StreamDecoder utf8 = new Utf8StreamDecoder();
                StringBuilder text = new StringBuilder();
                List<Integer> out = new ArrayList<>();
                FinishReason finish = FinishReason.LENGTH;
                long first = 0;
                while (out.size() < request.maxTokens()) {
                    if (run.cancelled) {
                        finish = FinishReason.CANCELLED;
                        break;
                    }
                    int token = 0;
                    for (int i = 1; i < logits.length; i++) if (logits[i] > logits[token]) token = i;
                    if (!request.ignoreEos() && model.tokenizer().isEndOfGeneration(token)) {
                        finish = FinishReason.STOP;
                        break;
                    }
                    if (first == 0) first = System.nanoTime();
                    out.add(token);
                    generated.incrementAndGet();
                    String piece = utf8.feed(model.tokenizer().pieceBytes(token, false));
                    text.append(piece);
                    listener.onToken(token, piece);
                    if (out.size() < request.maxTokens()) logits = model.forward(s, token);
                }
                completed.incrementAndGet();
                long end = System.nanoTime();
                run.result.complete(new GenerationResult(out.stream().mapToInt(Integer::intValue).toArray(), text.toString(), finish,
                        prompt.length, (first == 0 ? end : first) - start, end - (first == 0 ? end : first)));
            }
        });
        return run;
    }

    @Override
    public List<? extends GenerationHandle> submitAll(List<GenerationRequest> requests, List<TokenListener> listeners) {
        List<GenerationHandle> all = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) all.add(submit(requests.get(i), listeners.get(i)));
        return all;
    }

    @Override
    public EngineMetrics metrics() {
        return new EngineMetrics(0, 0, 0, 0, 0, 0, prompts.get(), 0, generated.get(), completed.get(), 0, 0, 0);
    }

    @Override
    public Placement placement() {
        return new Placement("self-sampling", Map.of("self-sampling", model.config().blockCount()));
    }

    @Override
    public void close() {
    }
}
