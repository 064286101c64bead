package dev.enclave.runtime.serve;

/**
 * An engine's counters and gauges, as the server's metrics and dashboard show them; {@code specSteps},
 * {@code specDrafted} and {@code specAccepted} count speculative steps, the guesses they checked and those kept;
 * {@code contextShifts} the sequences that filled their context and went on.
 */
public record EngineMetrics(int queued, int active, int kvBlocksUsed, int kvBlocksFree, int kvBlocksCached, double prefixHitRate,
                            long promptTokens, long cachedPromptTokens, long generatedTokens, long completed, long steps,
                            double lastTtftMillis, double lastInterTokenMillis, long specSteps, long specDrafted,
                            long specAccepted, long contextShifts) {

    /** Without context shifts. */
    public EngineMetrics(int queued, int active, int kvBlocksUsed, int kvBlocksFree, int kvBlocksCached, double prefixHitRate,
                         long promptTokens, long cachedPromptTokens, long generatedTokens, long completed, long steps,
                         double lastTtftMillis, double lastInterTokenMillis, long specSteps, long specDrafted, long specAccepted) {
        this(queued, active, kvBlocksUsed, kvBlocksFree, kvBlocksCached, prefixHitRate, promptTokens, cachedPromptTokens,
                generatedTokens, completed, steps, lastTtftMillis, lastInterTokenMillis, specSteps, specDrafted, specAccepted, 0);
    }

    public EngineMetrics(int queued, int active, int kvBlocksUsed, int kvBlocksFree, int kvBlocksCached, double prefixHitRate,
                         long promptTokens, long cachedPromptTokens, long generatedTokens, long completed, long steps,
                         double lastTtftMillis, double lastInterTokenMillis) {
        this(queued, active, kvBlocksUsed, kvBlocksFree, kvBlocksCached, prefixHitRate, promptTokens, cachedPromptTokens,
                generatedTokens, completed, steps, lastTtftMillis, lastInterTokenMillis, 0, 0, 0, 0);
    }

    /** Share of checked guesses that were kept. */
    public double specAcceptance() {
        return specDrafted == 0 ? 0 : (double) specAccepted / specDrafted;
    }

    /** Tokens a speculative step produced on average (the kept guesses and one sampled token). */
    public double specTokensPerStep() {
        return specSteps == 0 ? 0 : (double) (specAccepted + specSteps) / specSteps;
    }
}
