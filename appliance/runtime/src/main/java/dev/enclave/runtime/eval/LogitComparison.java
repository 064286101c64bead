package dev.enclave.runtime.eval;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A perplexity run's scored positions kept as a reference ({@link Writer}: per position the next token and the
 * log-probabilities of the whole vocabulary as float32), and a later run compared with it ({@link Reader}): mean KL
 * divergence from the reference, its 99th and 99.9th percentiles, how often both put the same token on top, and the
 * reference's own perplexity (for the difference). What every KV-cache or weight-format change is judged by.
 *
 * <p>File: the ASCII magic {@code ENCLAVE-LOGITS-2}, int vocab, int ctx; then per position int token, vocab float32
 * values (big-endian, {@link DataOutputStream}'s order), to the end of the file. Float32, not 16 bits: a reference
 * stored at float16 compared with its own run read a mean KLD of 4e-5 (same top token 99.94%): noise of the size of
 * the small effects this is for.
 */
public final class LogitComparison {

    private static final byte[] MAGIC = "ENCLAVE-LOGITS-2".getBytes(StandardCharsets.US_ASCII);

    private LogitComparison() {
    }

    /** log-softmax of {@code logits[off .. off + n)} into {@code out}, in double inside. */
    static void logSoftmax(float[] logits, int off, int n, double[] out) {
        double lse = Perplexity.logSumExp(logits, off, n);
        for (int i = 0; i < n; i++) out[i] = logits[off + i] - lse;
    }

    /** Writes the scored positions of a run. */
    public static final class Writer implements Perplexity.Scored, AutoCloseable {
        private final DataOutputStream out;
        private final int vocab;
        private double[] row = new double[0];
        private IOException failure;

        public Writer(Path file, int vocab, int ctx) throws IOException {
            OutputStream o = Files.newOutputStream(file);
            this.out = new DataOutputStream(new BufferedOutputStream(o, 1 << 20));
            this.vocab = vocab;
            out.write(MAGIC);
            out.writeInt(vocab);
            out.writeInt(ctx);
        }

        @Override
        public void position(float[] logits, int off, int n, int target) {
            if (failure != null) return;
            if (row.length < n) row = new double[n];
            logSoftmax(logits, off, n, row);
            try {
                out.writeInt(target);
                for (int i = 0; i < n; i++) out.writeFloat((float) row[i]);
            } catch (IOException e) {
                failure = e;
            }
        }

        @Override
        public void close() throws IOException {
            out.close();
            if (failure != null) throw failure;
        }
    }

    /** What a run's comparison with a reference found. */
    public record Result(int positions, double kldMean, double kldP99, double kldP999, double sameTopPct, double referencePpl) {
    }

    /** Reads a reference position by position as this run scores the same text. */
    public static final class Reader implements Perplexity.Scored, AutoCloseable {
        private final DataInputStream in;
        private final int vocab;
        private final double[] ref;
        private final double[] mine;
        private double[] klds = new double[1024];
        private int positions, sameTop;
        private double refNll;
        private RuntimeException failure;

        /** @throws IllegalArgumentException when the file is not a reference or was made with another vocabulary or context */
        public Reader(Path file, int vocab, int ctx) throws IOException {
            InputStream i = Files.newInputStream(file);
            this.in = new DataInputStream(new BufferedInputStream(i, 1 << 20));
            byte[] magic = in.readNBytes(MAGIC.length);
            if (!Arrays.equals(magic, MAGIC)) {
                in.close();
                throw new IllegalArgumentException(file + " is not a saved-logits file (perplexity --save-logits)");
            }
            int v = in.readInt(), c = in.readInt();
            if (v != vocab || c != ctx) {
                in.close();
                throw new IllegalArgumentException(file + " was saved with a vocabulary of " + v + " and --ctx " + c + ", this run has " + vocab + " and " + ctx);
            }
            this.vocab = vocab;
            this.ref = new double[vocab];
            this.mine = new double[vocab];
        }

        @Override
        public void position(float[] logits, int off, int n, int target) {
            if (failure != null) return;
            try {
                int t = in.readInt();
                if (t != target) throw new IllegalArgumentException("the reference was saved on another text (position " + positions + ")");
                for (int i = 0; i < vocab; i++) ref[i] = in.readFloat();
            } catch (EOFException e) {
                failure = new IllegalArgumentException("the reference has fewer positions (" + positions + ") than this run scores");
                return;
            } catch (IOException e) {
                failure = new IllegalStateException("cannot read the reference: " + e.getMessage(), e);
                return;
            } catch (IllegalArgumentException e) {
                failure = e;
                return;
            }
            logSoftmax(logits, off, n, mine);
            double kld = 0;
            int topRef = 0, topMine = 0;
            for (int i = 0; i < vocab; i++) {
                double p = Math.exp(ref[i]);
                kld += p * (ref[i] - mine[i]);
                if (ref[i] > ref[topRef]) topRef = i;
                if (mine[i] > mine[topMine]) topMine = i;
            }
            if (positions == klds.length) klds = Arrays.copyOf(klds, positions * 2);
            klds[positions++] = Math.max(0, kld);
            if (topRef == topMine) sameTop++;
            refNll -= ref[target];
        }

        /** The comparison over every position seen. */
        public Result result() {
            if (failure != null) throw failure;
            double[] sorted = Arrays.copyOf(klds, positions);
            Arrays.sort(sorted);
            double sum = 0;
            for (double k : sorted) sum += k;
            return new Result(positions, sum / positions, percentile(sorted, 0.99), percentile(sorted, 0.999),
                    100.0 * sameTop / positions, Math.exp(refNll / positions));
        }

        private static double percentile(double[] sorted, double q) {
            if (sorted.length == 0) return 0;
            return sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)];
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
