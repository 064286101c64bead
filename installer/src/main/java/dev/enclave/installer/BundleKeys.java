package dev.enclave.installer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

/** Ed25519 signing keys for bundles, as PEM files (PKCS#8 private, mode 600; X.509 public). */
public final class BundleKeys {

    public static final String PRIVATE = "enclave-bundle.key";
    public static final String PUBLIC = "enclave-bundle.pub";

    private BundleKeys() {
    }

    /** Writes a new key pair into {@code dir}; refuses to overwrite an existing private key. */
    public static KeyPair generate(Path dir) throws IOException, GeneralSecurityException {
        Files.createDirectories(dir);
        Path priv = dir.resolve(PRIVATE);
        if (Files.exists(priv)) throw new IOException("refusing to overwrite " + priv);
        KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
        Files.createFile(priv, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(priv, pem("PRIVATE KEY", kp.getPrivate().getEncoded()), StandardCharsets.US_ASCII);
        Files.writeString(dir.resolve(PUBLIC), pem("PUBLIC KEY", kp.getPublic().getEncoded()), StandardCharsets.US_ASCII);
        return kp;
    }

    public static PrivateKey readPrivate(Path p) throws IOException, GeneralSecurityException {
        return KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(der(p, "PRIVATE KEY")));
    }

    public static PublicKey readPublic(Path p) throws IOException, GeneralSecurityException {
        return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(der(p, "PUBLIC KEY")));
    }

    private static byte[] der(Path p, String type) throws IOException {
        String text = Files.readString(p, StandardCharsets.US_ASCII);
        int b = text.indexOf("-----BEGIN " + type + "-----");
        int e = text.indexOf("-----END " + type + "-----");
        if (b < 0 || e < b) throw new IOException(p + " is not a PEM " + type);
        return Base64.getMimeDecoder().decode(text.substring(b + 16 + type.length(), e));
    }

    private static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }
}
