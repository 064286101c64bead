package dev.enclave.runtime.backend;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * A model's transform-coded KV cache ({@code --kv-type tc:FILE}): per layer and KV head, a {@link KvTransformCode}
 * for the keys and one for the values, calibrated on text the model reads ({@code perplexity --kv-code}). Keys are
 * coded before RoPE, where they are far more compressible (a head's pre-RoPE keys keep most of their energy in a few
 * directions; RoPE spreads it over every pair), and turned to their position when attention reads them: the layer's
 * RoPE frequencies and style are part of the code. A coded key does not depend on its position, so a context shift
 * leaves it as it is.
 *
 * <p>File: "EKVC", version, the shape (layers, KV heads, head size), per layer the RoPE style and frequencies and the
 * codes, then a CRC32 of everything before it; {@link #read} refuses a file that does not check.
 */
public final class KvCode {

    private static final int MAGIC = 0x454B5643; // "EKVC"
    private static final int VERSION = 1;

    /** One layer's codes: keys and values per KV head, with the RoPE that turns its keys. */
    public static final class Layer {
        final KvTransformCode[] keys;
        final KvTransformCode[] values;
        final float[] invFreq;
        final boolean neox;
        private final KvCode owner;
        /** cos and sin per position and pair, grown on demand; replaced whole, so readers see a complete table. */
        private volatile float[][] rope = {new float[0], new float[0]};

        Layer(KvCode owner, KvTransformCode[] keys, KvTransformCode[] values, float[] invFreq, boolean neox) {
            this.owner = owner;
            this.keys = keys.clone();
            this.values = values.clone();
            this.invFreq = invFreq.clone();
            this.neox = neox;
        }

        public KvTransformCode keys(int head) {
            return keys[head];
        }

        public KvTransformCode values(int head) {
            return values[head];
        }

        public int heads() {
            return keys.length;
        }

        public KvCode owner() {
            return owner;
        }

        public float[] invFreq() {
            return invFreq.clone();
        }

        public boolean neox() {
            return neox;
        }

        /** Bytes of one position's keys and values. */
        public long bytesPerPosition() {
            return KvRows.Coded.rowBytes(keys) + KvRows.Coded.rowBytes(values);
        }

        /** Turns a head at {@code x[off..]} by RoPE's angle for {@code pos} (negative: back). */
        public void rope(float[] x, int off, int pos) {
            int pairs = invFreq.length;
            float[][] t = table(Math.abs(pos));
            float[] cos = t[0], sin = t[1];
            int at = Math.abs(pos) * pairs;
            float sign = pos < 0 ? -1f : 1f;
            for (int i = 0; i < pairs; i++) {
                float c = cos[at + i], s = sign * sin[at + i];
                int a = neox ? i : 2 * i, b = neox ? i + pairs : 2 * i + 1;
                float x0 = x[off + a], x1 = x[off + b];
                x[off + a] = x0 * c - x1 * s;
                x[off + b] = x0 * s + x1 * c;
            }
        }

        private float[][] table(int pos) {
            float[][] t = rope;
            int pairs = invFreq.length;
            if (pairs == 0 || t[0].length > pos * pairs) return t;
            synchronized (this) {
                t = rope;
                if (t[0].length > pos * pairs) return t;
                int n = Math.max(64, Integer.highestOneBit(pos) * 2);
                float[] cos = new float[n * pairs], sin = new float[n * pairs];
                for (int p = 0; p < n; p++) {
                    for (int i = 0; i < pairs; i++) {
                        double a = p * (double) invFreq[i];
                        cos[p * pairs + i] = (float) Math.cos(a);
                        sin[p * pairs + i] = (float) Math.sin(a);
                    }
                }
                rope = t = new float[][] {cos, sin};
                return t;
            }
        }
    }

    private final int headDim;
    private final List<Layer> layers;
    private final String label;

    /**
     * @param keys    keys[layer][head]
     * @param values  values[layer][head]
     * @param invFreq invFreq[layer]: the RoPE frequencies of each layer (pairs turned), as the model's
     * @param label   how the code is named in a plan ({@code tc:label}): its file, or how it was made
     */
    public KvCode(int headDim, KvTransformCode[][] keys, KvTransformCode[][] values, float[][] invFreq, boolean neox, String label) {
        if (keys.length == 0 || keys.length != values.length || keys.length != invFreq.length) {
            throw new IllegalArgumentException("a KV code needs keys, values and RoPE frequencies for every layer");
        }
        this.headDim = headDim;
        this.label = label;
        List<Layer> ls = new ArrayList<>();
        for (int l = 0; l < keys.length; l++) {
            if (keys[l].length == 0 || keys[l].length != values[l].length || keys[l].length != keys[0].length) {
                throw new IllegalArgumentException("layer " + l + " of the KV code has codes for a different number of heads");
            }
            for (int h = 0; h < keys[l].length; h++) {
                if (keys[l][h].dim != headDim || values[l][h].dim != headDim) {
                    throw new IllegalArgumentException("layer " + l + " of the KV code is not for heads of " + headDim);
                }
            }
            if (2 * invFreq[l].length > headDim) throw new IllegalArgumentException("layer " + l + " turns more values than a head has");
            ls.add(new Layer(this, keys[l], values[l], invFreq[l], neox));
        }
        this.layers = List.copyOf(ls);
    }

    public int headDim() {
        return headDim;
    }

    public int layers() {
        return layers.size();
    }

    public int heads() {
        return layers.getFirst().heads();
    }

    public Layer layer(int l) {
        return layers.get(l);
    }

    public String label() {
        return label;
    }

    /** The plan that stores each layer as this code says. */
    public KvPlan plan() {
        List<KvType> types = new ArrayList<>();
        for (Layer l : layers) types.add(KvType.coded(l));
        return new KvPlan(types);
    }

    /** Average bits per cached value (keys and values), everything a row stores included. */
    public double bitsPerValue() {
        long bytes = 0;
        for (Layer l : layers) bytes += l.bytesPerPosition();
        return bytes * 8.0 / (2.0 * layers.size() * heads() * headDim);
    }

    /** Average code bits per key and per value (before rounding each head's codes up to a byte). */
    public double[] codeBits() {
        long k = 0, v = 0;
        for (Layer l : layers) {
            for (int h = 0; h < l.heads(); h++) {
                k += l.keys[h].rowBits;
                v += l.values[h].rowBits;
            }
        }
        double n = (double) layers.size() * heads() * headDim;
        return new double[] {k / n, v / n};
    }

    public void write(Path file) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(MAGIC);
        out.writeInt(VERSION);
        out.writeInt(layers.size());
        out.writeInt(heads());
        out.writeInt(headDim);
        out.writeBoolean(layers.getFirst().neox);
        for (Layer l : layers) {
            out.writeInt(l.invFreq.length);
            for (float f : l.invFreq) out.writeFloat(f);
            for (int h = 0; h < l.heads(); h++) {
                writeCode(out, l.keys[h]);
                writeCode(out, l.values[h]);
            }
        }
        out.flush();
        CRC32 crc = new CRC32();
        crc.update(bytes.toByteArray());
        out.writeLong(crc.getValue());
        out.flush();
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.write(tmp, bytes.toByteArray());
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeCode(DataOutputStream out, KvTransformCode c) throws IOException {
        for (float f : c.forward) out.writeFloat(f);
        float[] inv = c.inverseRowMajor();
        for (float f : inv) out.writeFloat(f);
        for (int i = 0; i < c.dim; i++) {
            out.writeByte(c.bits[i]);
            if (c.bits[i] > 0) for (float f : c.levels[i]) out.writeFloat(f);
        }
    }

    /** Reads a code written by {@link #write}; a damaged, truncated or foreign file is refused in one line. */
    public static KvCode read(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        String name = file.getFileName().toString();
        if (all.length < 32) throw new IOException("KV code " + name + " is too short to be one");
        CRC32 crc = new CRC32();
        crc.update(all, 0, all.length - 8);
        long stored = java.nio.ByteBuffer.wrap(all, all.length - 8, 8).getLong();
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(all, 0, all.length - 8));
        if (in.readInt() != MAGIC) throw new IOException(name + " is not an Enclave KV code");
        int version = in.readInt();
        if (version != VERSION) throw new IOException("KV code " + name + " has version " + version + "; this build reads " + VERSION);
        if (stored != crc.getValue()) throw new IOException("KV code " + name + " is damaged (checksum mismatch)");
        try {
            int layers = in.readInt(), heads = in.readInt(), dim = in.readInt();
            if (layers < 1 || layers > 4096 || heads < 1 || heads > 4096 || dim < 1 || dim > 1024) {
                throw new IOException("KV code " + name + " has an impossible shape");
            }
            // every code holds two d x d float matrices and d bit counts: a shape the file cannot hold is refused before
            // anything of that size is allocated
            long least = (long) layers * heads * 2 * (8L * dim * dim + dim);
            if (least > all.length) throw new IOException("KV code " + name + " is truncated (its shape needs " + least + " bytes)");
            boolean neox = in.readBoolean();
            KvTransformCode[][] k = new KvTransformCode[layers][heads], v = new KvTransformCode[layers][heads];
            float[][] f = new float[layers][];
            for (int l = 0; l < layers; l++) {
                int pairs = in.readInt();
                if (pairs < 0 || 2 * pairs > dim) throw new IOException("KV code " + name + " has an impossible RoPE");
                f[l] = new float[pairs];
                for (int i = 0; i < pairs; i++) f[l][i] = in.readFloat();
                for (int h = 0; h < heads; h++) {
                    k[l][h] = readCode(in, dim);
                    v[l][h] = readCode(in, dim);
                }
            }
            if (in.available() != 0) throw new IOException("KV code " + name + " has bytes past its end");
            return new KvCode(dim, k, v, f, neox, file.toString()); // the path as given: a plan's text names it again
        } catch (java.io.EOFException e) {
            throw new IOException("KV code " + name + " is truncated");
        } catch (IllegalArgumentException e) {
            throw new IOException("KV code " + name + ": " + e.getMessage());
        }
    }

    private static KvTransformCode readCode(DataInputStream in, int dim) throws IOException {
        float[] fwd = new float[dim * dim], inv = new float[dim * dim];
        for (int i = 0; i < fwd.length; i++) fwd[i] = in.readFloat();
        for (int i = 0; i < inv.length; i++) inv[i] = in.readFloat();
        byte[] bits = new byte[dim];
        float[][] levels = new float[dim][];
        for (int i = 0; i < dim; i++) {
            bits[i] = in.readByte();
            if (bits[i] < 0 || bits[i] > 8) throw new IOException("a coefficient of " + bits[i] + " bits");
            if (bits[i] > 0) {
                levels[i] = new float[1 << bits[i]];
                for (int j = 0; j < levels[i].length; j++) levels[i][j] = in.readFloat();
            }
        }
        return new KvTransformCode(dim, fwd, inv, bits, levels);
    }
}
