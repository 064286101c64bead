package dev.enclave.runtime.model;

import dev.enclave.runtime.backend.Backend;
import dev.enclave.runtime.backend.DeviceBuffer;
import dev.enclave.runtime.backend.StepBatch;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The memory of one forward step, owned by whoever runs steps (the engine, or a single sequence's convenience
 * calls), never by a sequence of a batch: the step's descriptor and, on each backend the model's layers use, its
 * activation buffers. Grown when a step needs more room, reused otherwise: steady decoding allocates nothing.
 */
public final class Workspace {

    /** One backend's activations, token t's row at {@code t * width}. */
    static final class Activations {
        final DeviceBuffer x, xb, xb2, q, k, v, qkv, hb, hb2;
        /** The outputs of the products that share an input ({@code Backend.matmulShared}): q, k, v; gate, up. */
        final DeviceBuffer[] qkvOut, gateUpOut;
        DeviceBuffer hidden, logits; // per sequence: made on the backend of the output only
        DeviceBuffer hiddenAll, logitsAll; // per token, when every position's logits are asked for (perplexity)
        int allRows;

        Activations(Backend b, ModelConfig c, int tokens) {
            int dim = c.embeddingLength();
            x = b.allocate(tokens * dim);
            xb = b.allocate(tokens * Math.max(dim, c.qDim()));
            xb2 = b.allocate(tokens * dim);
            q = b.allocate(tokens * c.qDim());
            k = b.allocate(tokens * c.kvDim());
            v = b.allocate(tokens * c.kvDim());
            qkv = b.allocate(tokens * (c.qDim() + 2 * c.kvDim()));
            hb = b.allocate(tokens * 2 * c.feedForwardLength());
            hb2 = b.allocate(tokens * c.feedForwardLength());
            qkvOut = new DeviceBuffer[] {q, k, v};
            gateUpOut = new DeviceBuffer[] {hb, hb2};
        }
    }

    private final ModelConfig config;
    private final Map<Backend, Activations> acts = new IdentityHashMap<>();
    private int tokens;
    private int sequences;
    StepBatch step;
    /** The hidden state crossing from one backend to the next at a split. */
    float[] transfer = new float[0];
    /** The arguments of a single sequence's one-token step, kept so that such a step allocates nothing. */
    final InferenceState[] single = new InferenceState[1];
    final int[][] singleToken = {new int[1]};
    final int[] zero = {0};
    final int[] one = {1};

    Workspace(ModelConfig config, int tokens, int sequences) {
        this.config = config;
        this.tokens = Math.max(1, tokens);
        this.sequences = Math.max(1, sequences);
        this.step = new StepBatch(this.tokens, this.sequences);
    }

    /** Makes room for a step of {@code tokens} tokens from {@code sequences} sequences. */
    void ensure(int tokens, int sequences) {
        if (tokens > this.tokens || sequences > this.sequences) {
            this.tokens = Math.max(tokens, this.tokens);
            this.sequences = Math.max(sequences, this.sequences);
            step = new StepBatch(this.tokens, this.sequences);
            acts.clear();
        }
    }

    Activations on(Backend b) {
        Activations a = acts.get(b);
        if (a == null) acts.put(b, a = new Activations(b, config, tokens));
        return a;
    }

    /** The output buffers (final hidden state and logits per sequence) on {@code b}. */
    Activations output(Backend b) {
        Activations a = on(b);
        if (a.logits == null) {
            a.hidden = b.allocate(sequences * config.embeddingLength());
            a.logits = b.allocate(sequences * config.vocabularySize());
        }
        return a;
    }

    /** Output buffers for every token of a step of {@code rows} tokens (perplexity), on {@code b}. */
    Activations outputAll(Backend b, int rows) {
        Activations a = on(b);
        if (a.allRows < rows) {
            a.hiddenAll = b.allocate(rows * config.embeddingLength());
            a.logitsAll = b.allocate(rows * config.vocabularySize());
            a.allRows = rows;
        }
        return a;
    }

    /** Per sequence, how many of its last rows a speculative step wants logits of (null: the last row only). */
    int[] wanted;
    int wantedRows;
    float[] rowLogits = new float[0];
    private int[] rowIndex = new int[0];

    void rowsWanted(int[] perSequence, int rows) {
        wanted = perSequence;
        wantedRows = rows;
    }

    int[] rowIndex(int rows) {
        if (rowIndex.length < rows) rowIndex = new int[rows];
        return rowIndex;
    }

    float[] rowLogits(int floats) {
        if (rowLogits.length < floats) rowLogits = new float[floats];
        return rowLogits;
    }

    float[] transfer(int floats) {
        if (transfer.length < floats) transfer = new float[floats];
        return transfer;
    }
}
