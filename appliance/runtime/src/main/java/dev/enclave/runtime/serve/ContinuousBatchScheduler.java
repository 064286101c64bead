package dev.enclave.runtime.serve;

import dev.enclave.runtime.generate.ContextLengthExceededException;
import dev.enclave.runtime.generate.FinishReason;
import dev.enclave.runtime.generate.GenerationRequest;
import dev.enclave.runtime.generate.GenerationResult;
import dev.enclave.runtime.generate.DraftPolicy;
import dev.enclave.runtime.generate.StepCosts;
import dev.enclave.runtime.generate.ContextShift;
import dev.enclave.runtime.generate.Drafter;
import dev.enclave.runtime.generate.Speculation;
import dev.enclave.runtime.generate.StopStringMatcher;
import dev.enclave.runtime.generate.TokenListener;
import dev.enclave.runtime.generate.TokenLogprobs;
import dev.enclave.runtime.kv.KvPool;
import dev.enclave.runtime.kv.PrefixCache;
import dev.enclave.runtime.model.InferenceState;
import dev.enclave.runtime.model.TransformerModel;
import dev.enclave.runtime.tokenizer.Tokenizer;
import dev.enclave.runtime.tokenizer.Utf8StreamDecoder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Iteration-level scheduling (continuous batching) over one model: every step runs a single batched forward pass
 * over all active sequences — one token for each sequence that is generating, plus chunks of prompts still being
 * read, within a token budget — so that weights are decoded once per step for everyone. New requests join between
 * steps, finished ones leave at once and give their KV blocks back. KV memory is a shared paged pool; prompts
 * start from the longest prefix already in the {@link PrefixCache}.
 *
 * <p>One thread runs the loop and owns all sequence and cache state; other threads only submit and cancel.
 */
public final class ContinuousBatchScheduler implements InferenceEngine {

    /**
     * @param maxActive    sequences decoded together
     * @param maxQueue     requests that may wait; beyond that {@link #submit} throws {@link QueueFullException}
     * @param tokenBudget  tokens per step (decodes first, then prompt chunks)
     * @param blockSize    KV block size in positions
     * @param kvBytes      memory for the KV pool
     * @param timeoutMillis a request still running after this long ends with finish reason "length"; 0: no limit
     * @param maxTokensPerSecond battery saver: generated tokens per second across all sequences; 0: no cap
     * @param speculation  guessed tokens checked per step while few sequences decode (off: one token per step)
     */
    public record Settings(int maxActive, int maxQueue, int tokenBudget, int blockSize, long kvBytes, long timeoutMillis,
                           double maxTokensPerSecond, Speculation speculation, ContextShift contextShift) {
        /** Without a context shift: a sequence that fills its context ends there. */
        public Settings(int maxActive, int maxQueue, int tokenBudget, int blockSize, long kvBytes, long timeoutMillis,
                        double maxTokensPerSecond, Speculation speculation) {
            this(maxActive, maxQueue, tokenBudget, blockSize, kvBytes, timeoutMillis, maxTokensPerSecond, speculation, null);
        }

        public Settings(int maxActive, int maxQueue, int tokenBudget, int blockSize, long kvBytes, long timeoutMillis) {
            this(maxActive, maxQueue, tokenBudget, blockSize, kvBytes, timeoutMillis, 0);
        }

        public Settings(int maxActive, int maxQueue, int tokenBudget, int blockSize, long kvBytes, long timeoutMillis,
                        double maxTokensPerSecond) {
            this(maxActive, maxQueue, tokenBudget, blockSize, kvBytes, timeoutMillis, maxTokensPerSecond, Speculation.OFF);
        }

        public Settings {
            if (speculation == null) speculation = Speculation.OFF;
        }

        public Settings withSpeculation(Speculation s) {
            return new Settings(maxActive, maxQueue, tokenBudget, blockSize, kvBytes, timeoutMillis, maxTokensPerSecond, s, contextShift);
        }

        /** A sequence that fills its context shifts it ({@link TransformerModel#shiftContext}) and goes on; null: it ends. */
        public Settings withContextShift(ContextShift shift) {
            return new Settings(maxActive, maxQueue, tokenBudget, blockSize, kvBytes, timeoutMillis, maxTokensPerSecond, speculation, shift);
        }

        public static Settings defaults() {
            return new Settings(8, 64, 256, 16, 512L << 20, 0);
        }
    }

    private long throttleUntil; // battery saver: the loop sleeps until then after a step

    /** A submitted request; cancel() stops it at the next step and frees its blocks. */
    public static final class Handle implements GenerationHandle {
        final GenerationRequest request;
        final TokenListener listener;
        final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
        final long submitted = System.nanoTime();
        volatile boolean cancelled;
        /** Siblings sampled from the same prompt (n > 1): they start as forks of this sequence once its prompt is read. */
        List<Handle> forks = List.of();

        Handle(GenerationRequest request, TokenListener listener) {
            this.request = request;
            this.listener = listener;
        }

        @Override
        public void cancel() {
            cancelled = true;
        }

        @Override
        public CompletableFuture<GenerationResult> result() {
            return result;
        }
    }

    /** A running sequence. */
    private final class Seq {
        final Handle h;
        final InferenceState state;
        final int[] prompt;
        final Utf8StreamDecoder utf8 = new Utf8StreamDecoder();
        final StopStringMatcher stops;
        final StringBuilder text = new StringBuilder();
        int prefilled;
        int lastToken;
        int[] out = new int[16];
        int generated;
        long firstTokenAt;
        FinishReason finish;
        boolean matched;
        // speculation: the sequence's text for guessing, this step's guesses, their logits, and the back-off
        Drafter drafter;
        int[] draft;
        int[] draftStep;
        float[] draftLogits;
        int drafted;
        DraftPolicy policy;
        /** While a speculative step is checked: the KV positions that hold emitted tokens (0: all of them). */
        int validPositions;
        /** Context shifts made: the cache then no longer holds the conversation's text, so it is not cached for reuse. */
        int shifts;

        Seq(Handle h, InferenceState state) {
            this.h = h;
            this.state = state;
            this.prompt = h.request.promptTokens();
            this.stops = new StopStringMatcher(h.request.stop());
        }

        boolean decoding() {
            return prefilled == prompt.length;
        }
    }

    private final TransformerModel model;
    private final Tokenizer tokenizer;
    private final Settings settings;
    private final KvPool pool;
    /** The step's memory: this engine's, whichever sequences run. */
    private final dev.enclave.runtime.model.Workspace workspace;
    private final PrefixCache cache;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final ArrayDeque<Handle> waiting = new ArrayDeque<>();
    private final List<Seq> active = new ArrayList<>();
    private final Thread loop;
    private volatile boolean closed;

    // metrics
    private final AtomicLong completed = new AtomicLong();
    private final AtomicLong generatedTokens = new AtomicLong();
    private final AtomicLong promptTokens = new AtomicLong();
    private final AtomicLong cachedPromptTokens = new AtomicLong();
    private final AtomicLong steps = new AtomicLong();
    private final AtomicLong specSteps = new AtomicLong();
    /** Step durations by token count, shared by every sequence's {@link DraftPolicy}. */
    private final StepCosts stepCosts;
    private final AtomicLong contextShifts = new AtomicLong();
    private final AtomicLong specDrafted = new AtomicLong();
    private final AtomicLong specAccepted = new AtomicLong();
    private volatile double lastTtftMillis;
    private volatile double lastItlMillis;

    public ContinuousBatchScheduler(TransformerModel model, Settings settings) {
        this.model = model;
        this.tokenizer = model.tokenizer();
        this.settings = settings;
        this.stepCosts = new StepCosts(settings.speculation().maxDraft() + MAX_SPECULATING + 1);
        this.pool = model.newKvPool(settings.blockSize(), settings.kvBytes());
        if (settings.contextShift() != null && !settings.contextShift().prepare(model, pool)) {
            System.getLogger(ContinuousBatchScheduler.class.getName()).log(System.Logger.Level.WARNING,
                    "heavy-hitter context shifts need the CPU backend's attention counts; shifts drop the older half instead");
        }
        this.workspace = model.newWorkspace(settings.tokenBudget() + settings.maxActive(), settings.maxActive());
        this.cache = new PrefixCache(pool);
        this.loop = Thread.ofPlatform().daemon().name("enclave-scheduler").start(this::run);
    }

    /** Queues a request; throws {@link QueueFullException} when too many are waiting. */
    @Override
    public Handle submit(GenerationRequest request, TokenListener listener) {
        int ctx = model.config().contextLength();
        if (request.promptTokens().length >= ctx) {
            throw new ContextLengthExceededException(request.promptTokens().length, ctx);
        }
        long blocksNeeded = ((long) request.promptTokens().length + request.maxTokens() + pool.blockSize - 1) / pool.blockSize;
        if (blocksNeeded > pool.blocks) {
            throw new ContextLengthExceededException(request.promptTokens().length + request.maxTokens(), pool.blocks * pool.blockSize);
        }
        Handle h = new Handle(request, listener);
        lock.lock();
        try {
            if (closed) throw new IllegalStateException("the scheduler is closed");
            if (waiting.size() >= settings.maxQueue()) throw new QueueFullException(waiting.size());
            waiting.add(h);
            work.signal();
        } finally {
            lock.unlock();
        }
        return h;
    }

    /**
     * Parallel sampling ({@code n > 1}): the same prompt, one request per choice (each with its own sampler). The
     * prompt is read once; then the sequence forks — the n sequences share its KV blocks, and a block is copied only
     * when a sequence writes into one it shares (copy-on-write). Handles come back in the order of the requests.
     */
    @Override
    public List<Handle> submitAll(List<GenerationRequest> requests, List<TokenListener> listeners) {
        if (requests.isEmpty() || requests.size() != listeners.size()) throw new IllegalArgumentException("one listener per request");
        int[] prompt = requests.getFirst().promptTokens();
        for (GenerationRequest r : requests) {
            if (!Arrays.equals(r.promptTokens(), prompt)) throw new IllegalArgumentException("forked requests share one prompt");
        }
        int ctx = model.config().contextLength();
        if (prompt.length >= ctx) throw new ContextLengthExceededException(prompt.length, ctx);
        List<Handle> handles = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) handles.add(new Handle(requests.get(i), listeners.get(i)));
        Handle parent = handles.getFirst();
        parent.forks = List.copyOf(handles.subList(1, handles.size()));
        lock.lock();
        try {
            if (closed) throw new IllegalStateException("the scheduler is closed");
            if (waiting.size() >= settings.maxQueue()) throw new QueueFullException(waiting.size());
            waiting.add(parent);
            work.signal();
        } finally {
            lock.unlock();
        }
        return handles;
    }

    /** Submits and waits for the result on the calling thread. */
    public GenerationResult generate(GenerationRequest request, TokenListener listener) {
        Handle h = submit(request, listener);
        try {
            return h.result.get();
        } catch (InterruptedException e) {
            h.cancel();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw new IllegalStateException(e.getCause());
        }
    }

    private void run() {
        while (!closed) {
            try {
                admit();
                if (active.isEmpty()) {
                    lock.lock();
                    try {
                        if (waiting.isEmpty() && !closed) work.await(100, TimeUnit.MILLISECONDS);
                    } finally {
                        lock.unlock();
                    }
                    continue;
                }
                long before = generatedTokens.get();
                step();
                throttle(generatedTokens.get() - before);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException | Error e) {
                // a step failed: fail the sequences in it rather than the whole server
                for (Seq s : List.copyOf(active)) {
                    s.state.release();
                    if (s.drafter != null) s.drafter.close();
                    s.h.result.completeExceptionally(e);
                }
                active.clear();
            }
        }
    }

    /** Battery saver: spreads generated tokens so that they never come faster than the cap (a token bucket). */
    private void throttle(long tokens) throws InterruptedException {
        double cap = settings.maxTokensPerSecond();
        if (cap <= 0 || tokens == 0) return;
        long now = System.nanoTime();
        throttleUntil = Math.max(throttleUntil, now) + (long) (tokens * 1e9 / cap);
        long wait = throttleUntil - now;
        if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
    }

    private void admit() {
        while (active.size() < settings.maxActive()) {
            Handle h;
            lock.lock();
            try {
                h = waiting.peek();
                if (h == null) return;
                if (h.cancelled) {
                    waiting.poll();
                    h.result.complete(new GenerationResult(new int[0], "", FinishReason.CANCELLED, h.request.promptTokens().length, 0, 0));
                    for (Handle f : h.forks) f.result.complete(new GenerationResult(new int[0], "", FinishReason.CANCELLED, h.request.promptTokens().length, 0, 0));
                    continue;
                }
                // a forking request needs room for all its sequences (or an empty batch, whatever n is)
                if (!h.forks.isEmpty() && !active.isEmpty() && active.size() + 1 + h.forks.size() > settings.maxActive()) return;
                // admit only if the prompt's blocks are free (the cache gives back unused blocks on demand)
                int need = (h.request.promptTokens().length + pool.blockSize) / pool.blockSize;
                if (pool.freeBlocks() < need && !cache.evict(need - pool.freeBlocks())) {
                    if (!active.isEmpty()) return; // wait for running sequences to finish
                }
                waiting.poll();
            } finally {
                lock.unlock();
            }
            int ctx = Math.min(model.config().contextLength(), h.request.promptTokens().length + h.request.maxTokens());
            InferenceState state = model.newState(Math.max(ctx, 1), pool);
            Seq s = new Seq(h, state);
            promptTokens.addAndGet(s.prompt.length);
            for (int t : s.prompt) h.request.sampler().accept(t);
            active.add(s);
        }
    }

    private void step() {
        steps.incrementAndGet();
        // cancelled or timed-out sequences leave before the step
        long now = System.nanoTime();
        for (Seq s : List.copyOf(active)) {
            if (s.h.cancelled) finish(s, FinishReason.CANCELLED);
            else if (settings.timeoutMillis() > 0 && now - s.h.submitted > settings.timeoutMillis() * 1_000_000L) finish(s, FinishReason.LENGTH);
        }
        if (active.isEmpty()) return;
        int n = active.size();
        List<Seq> batch = new ArrayList<>(n);
        int[][] tokens = new int[n][];
        int[] from = new int[n];
        int[] count = new int[n];
        int[] logitRows = new int[n];
        int budget = settings.tokenBudget();
        // guesses are checked only while few sequences decode: a fuller batch already reads each weight once for many
        int decoders = 0;
        for (Seq s : active) if (s.decoding()) decoders++;
        boolean speculate = settings.speculation().enabled() && decoders <= MAX_SPECULATING;
        // decodes first: a long prompt never starves sequences that are generating
        for (Seq s : active) {
            if (s.decoding()) {
                int k = speculate ? draft(s, budget - decoders, decoders - 1) : 0;
                s.drafted = k;
                if (k > 0) {
                    s.draftStep[0] = s.lastToken;
                    System.arraycopy(s.draft, 0, s.draftStep, 1, k);
                    tokens[batch.size()] = s.draftStep;
                } else {
                    tokens[batch.size()] = new int[] {s.lastToken};
                }
                count[batch.size()] = k + 1;
                logitRows[batch.size()] = k + 1;
                batch.add(s);
                budget -= k + 1;
            }
        }
        // then prompt chunks, shortest remaining first, so that a follow-up turn that adds a few dozen tokens to a
        // cached conversation is not queued behind another client's long document; the oldest prompt in progress
        // keeps a quarter of the budget so that a stream of short prompts cannot starve it
        List<Seq> prompts = new ArrayList<>();
        for (Seq s : active) {
            if (s.decoding()) continue;
            if (!s.matched) {
                // a prompt that shares blocks with one still being read waits for them to reach the cache
                if (waitsForSharedPrefix(s)) continue;
                // at least the prompt's last token is computed: its logits give the first answer token
                PrefixCache.Prefix shared = cache.longestPrefix(s.prompt, s.prompt.length - 1);
                if (shared.tokens() > 0) {
                    s.state.adoptPrefix(shared.blocks(), shared.tokens());
                    s.prefilled = shared.tokens();
                    cachedPromptTokens.addAndGet(s.prefilled);
                }
                s.matched = true;
            }
            prompts.add(s);
        }
        if (!prompts.isEmpty()) {
            Seq oldest = prompts.getFirst();
            prompts.sort((a, b) -> Integer.compare(a.prompt.length - a.prefilled, b.prompt.length - b.prefilled));
            int reserve = Math.min(oldest.prompt.length - oldest.prefilled, Math.max(1, budget / 4));
            int left = budget - reserve;
            // a prompt that fits in one step's budget is read whole in this step even when decodes took part of the
            // budget: a follow-up turn then waits for one step, not two
            Seq shortest = prompts.getFirst();
            int shortRest = shortest.prompt.length - shortest.prefilled - (shortest == oldest ? reserve : 0);
            if (shortest.prompt.length - shortest.prefilled <= settings.tokenBudget()) left = Math.max(left, shortRest);
            for (Seq s : prompts) {
                int chunk = s == oldest ? reserve : 0;
                chunk += Math.min(s.prompt.length - s.prefilled - chunk, Math.max(left, 0));
                if (s != oldest) left -= chunk;
                else left -= chunk - reserve;
                if (chunk <= 0) continue;
                tokens[batch.size()] = s.prompt;
                from[batch.size()] = s.prefilled;
                count[batch.size()] = chunk;
                logitRows[batch.size()] = 1;
                batch.add(s);
            }
        }
        // make room in the KV pool; a sequence that cannot grow ends (one whose guesses do not fit checks none)
        for (int i = 0; i < batch.size(); i++) {
            Seq s = batch.get(i);
            if (s.drafted > 0 && s.decoding() && !s.state.blockTable().ensure(s.state.position() + count[i])) {
                s.drafted = 0;
                tokens[i] = new int[] {s.lastToken};
                count[i] = 1;
                logitRows[i] = 1;
            }
            if (!s.state.blockTable().ensure(s.state.position() + count[i])
                    || !s.state.blockTable().makeWritable(s.state.position(), s.state.position() + count[i])) {
                count[i] = 0;
                finish(s, FinishReason.LENGTH);
            }
        }
        int m = 0;
        int total = 0;
        for (int i = 0; i < batch.size(); i++) {
            if (count[i] == 0) continue;
            batch.set(m, batch.get(i));
            tokens[m] = tokens[i];
            from[m] = from[i];
            count[m] = count[i];
            logitRows[m] = logitRows[i];
            total += count[i];
            m++;
        }
        if (m == 0) return;
        InferenceState[] states = new InferenceState[m];
        boolean rows = false;
        float[][] rowLogits = new float[m][];
        for (int i = 0; i < m; i++) {
            states[i] = batch.get(i).state;
            rowLogits[i] = batch.get(i).draftLogits;
            rows |= logitRows[i] > 1;
        }
        long f0 = System.nanoTime();
        if (rows) {
            model.forward(workspace, states, tokens, Arrays.copyOf(from, m), Arrays.copyOf(count, m), Arrays.copyOf(logitRows, m), rowLogits);
        } else {
            model.forward(workspace, states, tokens, Arrays.copyOf(from, m), Arrays.copyOf(count, m));
        }
        // what guessing weighs against: steps of decoding sequences only, while few decode
        if (speculate && prompts.isEmpty()) stepCosts.record(total, System.nanoTime() - f0);
        for (int i = 0; i < m; i++) {
            Seq s = batch.get(i);
            if (s.decoding() && s.drafted > 0) {
                verify(s, s.drafted);
                continue;
            }
            if (!s.decoding()) {
                s.prefilled += count[i];
                // full blocks of prompt are shareable as soon as they are computed
                cache.insert(s.prompt, s.prefilled / pool.blockSize, s.state.blockTable());
                if (!s.decoding()) continue; // more of the prompt next step
                if (!s.h.forks.isEmpty()) {
                    // fork before anyone samples: samplers adjust logits in place
                    List<Seq> children = fork(s);
                    emit(s);
                    for (Seq c : children) emit(c);
                    continue;
                }
            }
            emit(s);
        }
    }

    /**
     * Whether {@code s} shares more of its prompt with a prompt still being read than the cache holds yet: then it
     * waits, and reuses those blocks once computed, instead of computing them a second time beside it.
     */
    private boolean waitsForSharedPrefix(Seq s) {
        int bs = pool.blockSize;
        for (Seq p : active) {
            if (p == s || !p.matched || p.decoding()) continue;
            int common = 0;
            int limit = Math.min(s.prompt.length - 1, p.prompt.length);
            while (common < limit && s.prompt[common] == p.prompt[common]) common++;
            if (common / bs > p.prefilled / bs) return true;
        }
        return false;
    }

    /** The parent has read the prompt: its siblings start from its state, sharing every KV block. */
    private List<Seq> fork(Seq parent) {
        List<Seq> children = new ArrayList<>();
        for (Handle f : parent.h.forks) {
            if (f.cancelled) {
                f.result.complete(new GenerationResult(new int[0], "", FinishReason.CANCELLED, parent.prompt.length, 0, 0));
                continue;
            }
            int ctx = Math.min(model.config().contextLength(), parent.prompt.length + f.request.maxTokens());
            InferenceState st = model.newState(Math.max(ctx, parent.state.position() + 1), pool);
            parent.state.forkInto(st);
            Seq c = new Seq(f, st);
            c.prefilled = c.prompt.length;
            c.matched = true;
            for (int t : c.prompt) f.request.sampler().accept(t);
            promptTokens.addAndGet(c.prompt.length);
            cachedPromptTokens.addAndGet(c.prompt.length);
            active.add(c);
            children.add(c);
        }
        parent.h.forks = List.of();
        return children;
    }

    /** Samples the sequence's next token from its logits and streams it. */
    private void emit(Seq s) {
        GenerationRequest r = s.h.request;
        if (s.generated >= r.maxTokens()) {
            finish(s, FinishReason.LENGTH);
            return;
        }
        float[] raw = r.topLogprobs() >= 0 ? s.state.logits().clone() : null; // samplers adjust logits in place
        int token = r.sampler().sample(s.state.logits());
        long now = System.nanoTime();
        if (s.firstTokenAt == 0) {
            s.firstTokenAt = now;
            lastTtftMillis = (now - s.h.submitted) / 1e6;
        }
        if (!r.ignoreEos() && tokenizer.isEndOfGeneration(token)) {
            finish(s, FinishReason.STOP);
            return;
        }
        r.sampler().accept(token);
        if (s.drafter != null) s.drafter.accept(token);
        if (s.generated == s.out.length) s.out = Arrays.copyOf(s.out, s.out.length * 2);
        s.out[s.generated++] = token;
        generatedTokens.incrementAndGet();
        String released = s.stops.accept(s.utf8.feed(tokenizer.pieceBytes(token, false)));
        s.text.append(released);
        boolean keepGoing;
        try {
            keepGoing = raw == null ? s.h.listener.onToken(token, released)
                    : s.h.listener.onToken(token, released, TokenLogprobs.of(raw, token, r.topLogprobs()));
        } catch (RuntimeException e) {
            keepGoing = false;
        }
        if (!keepGoing || s.h.cancelled) {
            finish(s, FinishReason.CANCELLED);
        } else if (s.stops.stopped()) {
            finish(s, FinishReason.STOP);
        } else if (s.generated >= r.maxTokens() || s.state.position() >= s.state.contextLength() && !shifted(s)) {
            finish(s, FinishReason.LENGTH);
        } else {
            s.lastToken = token;
        }
    }

    /** A sequence at the end of its context: shifted when the settings ask for it and the pool has room (true). */
    private boolean shifted(Seq s) {
        ContextShift shift = settings.contextShift();
        if (shift == null || !shift.apply(model, s.state)) return false;
        s.shifts++;
        contextShifts.incrementAndGet();
        return true;
    }

    /** Sequences decoding at once up to which their guesses are checked. */
    private static final int MAX_SPECULATING = 2;

    /**
     * Guesses for the sequence's next tokens (0: none this step), at most what its limits and the budget allow, in a
     * step that also carries {@code others} plain tokens.
     */
    private int draft(Seq s, int budget, int others) {
        Speculation spec = settings.speculation();
        if (s.h.request.topLogprobs() >= 0) return 0;
        if (s.drafter == null) {
            s.drafter = spec.newDrafter(s.state.contextLength());
            for (int t : s.prompt) s.drafter.accept(t);
            for (int i = 0; i < s.generated; i++) s.drafter.accept(s.out[i]);
            s.draft = new int[spec.maxDraft()];
            s.draftStep = new int[spec.maxDraft() + 1];
            s.policy = spec.newPolicy(stepCosts);
        }
        int max = s.policy.length(Math.min(s.h.request.maxTokens() - s.generated,
                Math.min(s.state.contextLength() - s.state.position() - 2, budget)), others);
        if (max <= 0) return 0;
        long t0 = System.nanoTime();
        int k = s.drafter.draft(s.draft, max);
        s.policy.drafted(k, System.nanoTime() - t0);
        if (k > 0 && s.draftLogits == null) s.draftLogits = new float[(spec.maxDraft() + 1) * model.config().vocabularySize()];
        return k;
    }

    /**
     * Checks a speculative step's k guesses: position i's logits are sampled as in a plain step and the guess kept
     * only when the sample equals it; the first other sample is the step's last token (as is the sample after the
     * last guess when all were kept). The KV cache is cut back to the tokens kept.
     */
    private void verify(Seq s, int k) {
        int vocab = model.config().vocabularySize();
        int base = s.state.position() - (k + 1);
        int kept = 0;
        for (int i = 0; i <= k; i++) {
            System.arraycopy(s.draftLogits, i * vocab, s.state.logits(), 0, vocab);
            s.validPositions = base + 1 + i;
            int before = s.generated;
            emit(s);
            if (!active.contains(s) || s.generated == before) break; // finished (and truncated to the valid positions)
            if (i == k || s.out[s.generated - 1] != s.draft[i]) break;
            kept++;
        }
        s.validPositions = 0;
        if (active.contains(s)) s.state.truncate(base + 1 + kept);
        specSteps.incrementAndGet();
        specDrafted.addAndGet(k);
        specAccepted.addAndGet(kept);
        s.policy.checked(k, kept);
    }

    private void finish(Seq s, FinishReason reason) {
        if (!active.remove(s)) return;
        // siblings that never started (the prompt was not read) end the same way
        for (Handle f : s.h.forks) f.result.complete(new GenerationResult(new int[0], "", reason, s.prompt.length, 0, 0));
        s.h.forks = List.of();
        if (reason != FinishReason.CANCELLED && !s.stops.stopped()) {
            String rest = s.stops.accept(s.utf8.flush()) + s.stops.flush();
            if (!rest.isEmpty()) {
                s.text.append(rest);
                try {
                    s.h.listener.onToken(-1, rest);
                } catch (RuntimeException ignored) {
                    // the client is gone; the result still completes
                }
            }
        }
        // positions of guesses that were not kept hold nothing of the conversation
        if (s.validPositions > 0 && s.validPositions < s.state.position()) s.state.truncate(s.validPositions);
        // the whole conversation so far — prompt and answer — is a prefix of the client's next turn
        if (s.matched && s.generated > 0 && s.shifts == 0) {
            int[] conversation = Arrays.copyOf(s.prompt, s.prompt.length + s.generated);
            System.arraycopy(s.out, 0, conversation, s.prompt.length, s.generated);
            cache.insertWithTail(conversation, s.state.position(), s.state.blockTable());
        }
        s.state.release();
        if (s.drafter != null) s.drafter.close(); // a draft model's cache of this sequence
        long end = System.nanoTime();
        long firstAt = s.firstTokenAt == 0 ? end : s.firstTokenAt;
        if (s.generated > 1) lastItlMillis = (end - firstAt) / 1e6 / (s.generated - 1);
        completed.incrementAndGet();
        s.h.result.complete(new GenerationResult(Arrays.copyOf(s.out, s.generated), s.text.toString(), reason,
                s.prompt.length, firstAt - s.h.submitted, end - firstAt));
    }

    // ---- metrics ----

    @Override
    public dev.enclave.runtime.backend.Placement placement() {
        return model.placement();
    }

    /** Context shifts made so far (sequences that filled their context and went on). */
    public long contextShifts() {
        return contextShifts.get();
    }

    @Override
    public EngineMetrics metrics() {
        int queued;
        lock.lock();
        try {
            queued = waiting.size();
        } finally {
            lock.unlock();
        }
        long prompt = promptTokens.get();
        return new EngineMetrics(queued, active.size(), pool.usedBlocks(), pool.freeBlocks(), cache.cachedBlocks(),
                prompt == 0 ? 0 : (double) cachedPromptTokens.get() / prompt, prompt, cachedPromptTokens.get(),
                generatedTokens.get(), completed.get(), steps.get(), lastTtftMillis, lastItlMillis,
                specSteps.get(), specDrafted.get(), specAccepted.get(), contextShifts.get());
    }

    public KvPool pool() {
        return pool;
    }

    @Override
    public void close() {
        closed = true;
        loop.interrupt();
        try {
            loop.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        lock.lock();
        try {
            for (Handle h : waiting) h.result.cancel(false);
            waiting.clear();
        } finally {
            lock.unlock();
        }
    }
}
