package dev.enclave.server.model;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/** The scheduler's state on /q/metrics (Prometheus): queue, sequences, KV blocks, prefix cache, tokens, latency. */
@ApplicationScoped
public class SchedulerMetrics {

    @Produces
    @Singleton
    MeterBinder schedulerMeters(ModelService models) {
        return (MeterRegistry r) -> {
            Gauge.builder("enclave.queue.depth", models, m -> m.metrics().queued()).description("requests waiting").register(r);
            Gauge.builder("enclave.sequences.active", models, m -> m.metrics().active()).description("sequences in the running batch").register(r);
            Gauge.builder("enclave.kv.blocks.used", models, m -> m.metrics().kvBlocksUsed()).description("KV cache blocks in use").register(r);
            Gauge.builder("enclave.kv.blocks.free", models, m -> m.metrics().kvBlocksFree()).description("KV cache blocks free").register(r);
            Gauge.builder("enclave.kv.blocks.cached", models, m -> m.metrics().kvBlocksCached()).description("KV blocks held by the prefix cache").register(r);
            Gauge.builder("enclave.prefix.cache.hit.ratio", models, m -> m.metrics().prefixHitRate()).description("share of prompt tokens served from the prefix cache").register(r);
            Gauge.builder("enclave.ttft.last.seconds", models, m -> m.metrics().lastTtftMillis() / 1000).description("time to first token of the last request").register(r);
            Gauge.builder("enclave.inter.token.last.seconds", models, m -> m.metrics().lastInterTokenMillis() / 1000).description("mean gap between tokens of the last request").register(r);
            FunctionCounter.builder("enclave.tokens.generated", models, m -> m.metrics().generatedTokens()).description("tokens generated").register(r);
            FunctionCounter.builder("enclave.tokens.prompt", models, m -> m.metrics().promptTokens()).description("prompt tokens received").register(r);
            FunctionCounter.builder("enclave.tokens.prompt.cached", models, m -> m.metrics().cachedPromptTokens()).description("prompt tokens reused from the prefix cache").register(r);
            FunctionCounter.builder("enclave.requests.completed", models, m -> m.metrics().completed()).description("requests finished").register(r);
            for (String backend : dev.enclave.runtime.backend.Backends.KNOWN) {
                if (backend.equals("auto")) continue;
                Gauge.builder("enclave.backend.layers", models, m -> m.current().engine().placement().layers().getOrDefault(backend, 0))
                        .tag("backend", backend).description("model layers running on this backend").register(r);
            }
            FunctionCounter.builder("enclave.scheduler.steps", models, m -> m.metrics().steps()).description("batched forward steps").register(r);
            FunctionCounter.builder("enclave.speculative.steps", models, m -> m.metrics().specSteps()).description("steps that checked guessed tokens").register(r);
            FunctionCounter.builder("enclave.speculative.drafted", models, m -> m.metrics().specDrafted()).description("guessed tokens checked").register(r);
            FunctionCounter.builder("enclave.speculative.accepted", models, m -> m.metrics().specAccepted()).description("guessed tokens kept").register(r);
            Gauge.builder("enclave.speculative.acceptance.ratio", models, m -> m.metrics().specAcceptance()).description("share of checked guesses kept").register(r);
            Gauge.builder("enclave.speculative.tokens.per.step", models, m -> m.metrics().specTokensPerStep()).description("tokens a speculative step produced on average").register(r);
            FunctionCounter.builder("enclave.context.shifts", models, m -> m.metrics().contextShifts()).description("sequences that filled their context and went on (enclave.scheduler.context-shift)").register(r);
        };
    }
}
