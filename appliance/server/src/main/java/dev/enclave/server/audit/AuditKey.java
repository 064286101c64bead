package dev.enclave.server.audit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The audit chain's HMAC-SHA256 key, in a file of its own (mode 600) outside the audit database: one line
 * {@code enclave-audit-key 1 FROM HEX}, where FROM is the first entry it keys (entries before it were written by a
 * version without a key). An installer may keep it where the service can read but an operator's tools cannot.
 */
public final class AuditKey {

    private static final String MAGIC = "enclave-audit-key";

    private final byte[] key;
    private final long fromSeq;

    private AuditKey(byte[] key, long fromSeq) {
        this.key = key;
        this.fromSeq = fromSeq;
    }

    /** The first sequence number this key covers. */
    public long fromSeq() {
        return fromSeq;
    }

    static AuditKey read(Path file) throws IOException {
        String[] f = Files.readString(file, StandardCharsets.US_ASCII).trim().split(" ");
        if (f.length != 4 || !f[0].equals(MAGIC) || !f[1].equals("1")) throw new IOException("not an audit key file");
        try {
            byte[] k = HexFormat.of().parseHex(f[3]);
            if (k.length < 32) throw new IOException("audit key too short");
            return new AuditKey(k, Long.parseLong(f[2]));
        } catch (IllegalArgumentException e) {
            throw new IOException("not an audit key file");
        }
    }

    /** The key in {@code file}; a new random one (keying entries from {@code nextSeq} on) when there is none. */
    static AuditKey openOrCreate(Path file, long nextSeq) throws IOException {
        if (Files.exists(file)) return read(file);
        byte[] k = new byte[32];
        new SecureRandom().nextBytes(k);
        String line = MAGIC + " 1 " + nextSeq + " " + HexFormat.of().formatHex(k) + "\n";
        if (file.getParent() != null) Files.createDirectories(file.getParent());
        try {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (FileAlreadyExistsException e) {
            return read(file); // another process made it first
        } catch (UnsupportedOperationException e) {
            Files.createFile(file);
        }
        Files.writeString(file, line, StandardCharsets.US_ASCII);
        return new AuditKey(k, nextSeq);
    }

    String mac(String prev, long seq, long at, String actor, String action, String target, String detail, String ip) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return HexFormat.of().formatHex(mac.doFinal(AuditLog.entryBytes(prev, seq, at, actor, action, target, detail, ip)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
