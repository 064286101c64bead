package dev.enclave.installer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The list of every file in a bundle with its SHA-256, signed with Ed25519 (the JDK's own {@link Signature}).
 * Text form, one file per line, sorted by path: {@code <sha256-hex>  <relative/path>}. Verification checks the
 * signature over those exact bytes first, then every file's hash, and names the first file that differs.
 */
public record BundleManifest(Map<String, String> sha256ByPath) {

    public static final String FILE_NAME = "MANIFEST.sha256";
    public static final String SIGNATURE_NAME = "MANIFEST.sig";

    /** Hashes every regular file under {@code root} except the manifest and its signature. */
    public static BundleManifest of(Path root) throws IOException {
        Map<String, String> hashes = new TreeMap<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path p : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                String rel = root.relativize(p).toString().replace('\\', '/');
                if (rel.equals(FILE_NAME) || rel.equals(SIGNATURE_NAME)) continue;
                hashes.put(rel, sha256(p));
            }
        }
        return new BundleManifest(hashes);
    }

    public byte[] toBytes() {
        StringBuilder sb = new StringBuilder();
        sha256ByPath.forEach((path, hash) -> sb.append(hash).append("  ").append(path).append('\n'));
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    public static BundleManifest parse(byte[] bytes) {
        Map<String, String> hashes = new TreeMap<>();
        int line = 0;
        for (String l : new String(bytes, StandardCharsets.UTF_8).split("\n")) {
            line++;
            if (l.isEmpty()) continue;
            if (l.length() < 67 || l.charAt(64) != ' ' || l.charAt(65) != ' ' || !l.substring(0, 64).matches("[0-9a-f]{64}")) {
                throw new IllegalArgumentException("manifest line " + line + " is malformed");
            }
            String path = l.substring(66);
            if (path.startsWith("/") || path.contains("..") || hashes.put(path, l.substring(0, 64)) != null) {
                throw new IllegalArgumentException("manifest line " + line + " has a bad or repeated path: " + path);
            }
        }
        return new BundleManifest(hashes);
    }

    /** Writes the manifest and its Ed25519 signature into {@code root}. */
    public void writeSigned(Path root, PrivateKey key) throws IOException, GeneralSecurityException {
        byte[] bytes = toBytes();
        Signature s = Signature.getInstance("Ed25519");
        s.initSign(key);
        s.update(bytes);
        Files.write(root.resolve(FILE_NAME), bytes);
        Files.write(root.resolve(SIGNATURE_NAME), s.sign());
    }

    /**
     * Verifies the signature with the pinned public key, then every file. Returns the problems found, empty when
     * the bundle is intact; extra files not in the manifest count as problems too.
     */
    public static List<String> verify(Path root, PublicKey pinned) throws IOException, GeneralSecurityException {
        Path manifest = root.resolve(FILE_NAME);
        Path sig = root.resolve(SIGNATURE_NAME);
        if (!Files.isRegularFile(manifest) || !Files.isRegularFile(sig)) {
            return List.of("bundle is unsigned: " + FILE_NAME + " or " + SIGNATURE_NAME + " is missing");
        }
        byte[] bytes = Files.readAllBytes(manifest);
        Signature s = Signature.getInstance("Ed25519");
        s.initVerify(pinned);
        s.update(bytes);
        if (!s.verify(Files.readAllBytes(sig))) {
            return List.of("signature does not match the pinned public key: the manifest was altered or signed by someone else");
        }
        BundleManifest expected = parse(bytes);
        BundleManifest actual = of(root);
        List<String> problems = new ArrayList<>();
        expected.sha256ByPath.forEach((path, hash) -> {
            String got = actual.sha256ByPath.get(path);
            if (got == null) problems.add("missing file: " + path);
            else if (!got.equals(hash)) problems.add("file differs from the manifest: " + path);
        });
        actual.sha256ByPath.keySet().stream().filter(p -> !expected.sha256ByPath.containsKey(p))
                .forEach(p -> problems.add("file not in the manifest: " + p));
        return problems;
    }

    static String sha256(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
