package dev.enclave.runtime.serve;

/** An engine's counters and gauges, as the server's metrics and dashboard show them. */
public record EngineMetrics(int queued, int active, int kvBlocksUsed, int kvBlocksFree, int kvBlocksCached, double prefixHitRate,
                            long promptTokens, long cachedPromptTokens, long generatedTokens, long completed, long steps,
                            double lastTtftMillis, double lastInterTokenMillis) {
}
