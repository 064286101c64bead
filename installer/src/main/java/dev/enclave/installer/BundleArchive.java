package dev.enclave.installer;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.DigestInputStream;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * A bundle is one tar file: {@code bundle.properties}, the application, models, configuration, device profiles, an
 * SBOM, {@code install.sh}, and {@link BundleManifest}'s {@code MANIFEST.sha256} + {@code MANIFEST.sig}.
 *
 * <p>Reading is two passes. The first streams every entry and refuses anything unsafe — absolute paths, {@code ..},
 * links of any kind, devices — while hashing every file; then the signature is checked with the pinned key and
 * every hash against the manifest (missing and extra files too). Only a bundle that passes all of that is extracted,
 * in the second pass, into a staging directory. A refused bundle writes nothing.
 */
public final class BundleArchive {

    private static final long MAX_ENTRY = 64L << 30;

    private BundleArchive() {
    }

    /** Signs the directory {@code staged} (writes the manifest and signature into it) and tars it into {@code out}. */
    public static void create(Path staged, PrivateKey key, Path out) throws IOException, GeneralSecurityException {
        BundleManifest.of(staged).writeSigned(staged, key);
        List<Path> files;
        try (Stream<Path> s = Files.walk(staged)) {
            files = s.filter(p -> !p.equals(staged)).sorted().toList();
        }
        Path tmp = out.resolveSibling(out.getFileName() + ".part");
        try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(tmp));
             TarArchiveOutputStream tar = new TarArchiveOutputStream(os)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            for (Path p : files) {
                if (Files.isSymbolicLink(p)) throw new IOException("bundles carry no links: " + p);
                String name = staged.relativize(p).toString().replace('\\', '/') + (Files.isDirectory(p) ? "/" : "");
                // plain ustar/PAX entries: no host attributes (owner names, creation times) leak into the bundle
                TarArchiveEntry e = new TarArchiveEntry(name);
                if (Files.isRegularFile(p)) e.setSize(Files.size(p));
                e.setModTime(Files.getLastModifiedTime(p).toMillis());
                e.setMode((Files.isDirectory(p) ? 0040000 : 0100000) | (Files.isDirectory(p) || Files.isExecutable(p) ? 0755 : 0644));
                e.setUserId(0);
                e.setGroupId(0);
                e.setUserName("root");
                e.setGroupName("root");
                tar.putArchiveEntry(e);
                if (Files.isRegularFile(p)) Files.copy(p, tar);
                tar.closeArchiveEntry();
            }
        }
        Files.move(tmp, out, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    /** What a verified bundle holds. */
    public record Verified(BundleInfo info, Map<String, String> files) {
    }

    /** Pass one: safety of every entry, signature, every hash. Throws with the first reason; writes nothing. */
    public static Verified verify(Path bundle, PublicKey pinned) throws BundleException {
        Map<String, String> hashes = new TreeMap<>();
        byte[] manifest = null, sig = null, info = null;
        try (InputStream in = new BufferedInputStream(Files.newInputStream(bundle));
             TarArchiveInputStream tar = new TarArchiveInputStream(in)) {
            TarArchiveEntry e;
            while ((e = tar.getNextEntry()) != null) {
                String name = safeName(e);
                if (e.isDirectory()) continue;
                if (e.getSize() > MAX_ENTRY) throw new BundleException("entry too large: " + name);
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                byte[] small = null;
                if (name.equals(BundleManifest.FILE_NAME) || name.equals(BundleManifest.SIGNATURE_NAME)
                        || name.equals(BundleInfo.FILE)) {
                    small = tar.readNBytes(1 << 20);
                    md.update(small);
                } else {
                    try (DigestInputStream d = new DigestInputStream(new NonClosing(tar), md)) {
                        d.transferTo(OutputStream.nullOutputStream());
                    }
                }
                if (hashes.put(name, HexFormat.of().formatHex(md.digest())) != null) {
                    throw new BundleException("entry appears twice: " + name);
                }
                switch (name) {
                    case BundleManifest.FILE_NAME -> manifest = small;
                    case BundleManifest.SIGNATURE_NAME -> sig = small;
                    case BundleInfo.FILE -> info = small;
                    default -> { }
                }
            }
        } catch (IOException | GeneralSecurityException ex) {
            throw new BundleException("not a readable bundle: " + ex.getMessage(), ex);
        }
        if (manifest == null || sig == null) throw new BundleException("bundle is unsigned (no manifest or signature)");
        try {
            Signature s = Signature.getInstance("Ed25519");
            s.initVerify(pinned);
            s.update(manifest);
            if (!s.verify(sig)) {
                throw new BundleException("signature does not match the pinned public key: altered, or signed by someone else");
            }
        } catch (GeneralSecurityException ex) {
            throw new BundleException("signature check failed: " + ex.getMessage(), ex);
        }
        BundleManifest expected;
        try {
            expected = BundleManifest.parse(manifest);
        } catch (IllegalArgumentException ex) {
            throw new BundleException("manifest is malformed: " + ex.getMessage());
        }
        for (var entry : expected.sha256ByPath().entrySet()) {
            String got = hashes.get(entry.getKey());
            if (got == null) throw new BundleException("file missing from the bundle: " + entry.getKey());
            if (!got.equals(entry.getValue())) throw new BundleException("file differs from the signed manifest: " + entry.getKey());
        }
        for (String name : hashes.keySet()) {
            if (name.equals(BundleManifest.FILE_NAME) || name.equals(BundleManifest.SIGNATURE_NAME)) continue;
            if (!expected.sha256ByPath().containsKey(name)) throw new BundleException("file not in the signed manifest: " + name);
        }
        if (info == null) throw new BundleException("bundle has no " + BundleInfo.FILE);
        try {
            return new Verified(BundleInfo.parse(new String(info, StandardCharsets.UTF_8)), hashes);
        } catch (IOException ex) {
            throw new BundleException(ex.getMessage());
        }
    }

    /**
     * Pass two, only after {@link #verify}: extracts into {@code target} (which must not exist), re-checking each
     * file's hash as it is written, so a bundle swapped between the passes is caught too.
     */
    public static void extract(Path bundle, Verified verified, Path target) throws BundleException {
        if (Files.exists(target)) throw new BundleException("target exists: " + target);
        try {
            Files.createDirectories(target);
            try (InputStream in = new BufferedInputStream(Files.newInputStream(bundle));
                 TarArchiveInputStream tar = new TarArchiveInputStream(in)) {
                TarArchiveEntry e;
                while ((e = tar.getNextEntry()) != null) {
                    String name = safeName(e);
                    Path out = target.resolve(name).normalize();
                    if (!out.startsWith(target)) throw new BundleException("entry escapes the target: " + name);
                    if (e.isDirectory()) {
                        Files.createDirectories(out);
                        continue;
                    }
                    Files.createDirectories(out.getParent());
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    try (DigestInputStream d = new DigestInputStream(new NonClosing(tar), md);
                         OutputStream os = Files.newOutputStream(out)) {
                        d.transferTo(os);
                    }
                    if (!HexFormat.of().formatHex(md.digest()).equals(verified.files().get(name))) {
                        throw new BundleException("file changed since verification: " + name);
                    }
                    if ((e.getMode() & 0100) != 0) {
                        Files.setPosixFilePermissions(out, Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                                PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_EXECUTE,
                                PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_EXECUTE));
                    }
                }
            }
        } catch (BundleException ex) {
            deleteTree(target);
            throw ex;
        } catch (IOException | GeneralSecurityException ex) {
            deleteTree(target);
            throw new BundleException("extraction failed: " + ex.getMessage(), ex);
        }
    }

    /** Refuses absolute paths, {@code ..}, links, devices and fifos. */
    static String safeName(TarArchiveEntry e) throws BundleException {
        String name = e.getName();
        if (e.isSymbolicLink() || e.isLink()) {
            throw new BundleException("bundle contains a link, which is never allowed: " + name + " -> " + e.getLinkName());
        }
        if (!e.isFile() && !e.isDirectory()) throw new BundleException("bundle contains a special file: " + name);
        if (name.startsWith("/") || name.contains("\\") || name.contains("\0")) throw new BundleException("unsafe path in bundle: " + name);
        String trimmed = name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
        for (String part : trimmed.split("/")) {
            if (part.equals("..") || part.isEmpty() && !trimmed.isEmpty()) throw new BundleException("unsafe path in bundle: " + name);
        }
        return trimmed.startsWith("./") ? trimmed.substring(2) : trimmed;
    }

    static void deleteTree(Path dir) {
        if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort
        }
    }

    /** Lets a digest stream be closed without closing the tar stream under it. */
    private static final class NonClosing extends java.io.FilterInputStream {
        NonClosing(InputStream in) {
            super(in);
        }

        @Override
        public void close() {
        }
    }

    static List<String> list(Path bundle) throws IOException {
        List<String> names = new ArrayList<>();
        try (InputStream in = new BufferedInputStream(Files.newInputStream(bundle));
             TarArchiveInputStream tar = new TarArchiveInputStream(in)) {
            TarArchiveEntry e;
            while ((e = tar.getNextEntry()) != null) names.add(e.getName());
        }
        return names;
    }
}
