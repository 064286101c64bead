package dev.enclave.installer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedInputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every kind of bad bundle is refused with a clear reason, and nothing at all is written under the root. */
class HostileBundleTest {

    @TempDir
    Path tmp;
    KeyPair keys;
    Path good;
    Path root;

    @BeforeEach
    void bundle() throws Exception {
        keys = BundleKeys.generate(tmp.resolve("keys"));
        Path app = Files.createDirectories(tmp.resolve("app"));
        Files.writeString(app.resolve("quarkus-run.jar"), "application");
        good = tmp.resolve("good.tar");
        new BundleBuilder(app, "1.0.0", BundleInfo.hostArch()).build(keys.getPrivate(), good);
        root = Files.createDirectories(tmp.resolve("root"));
    }

    /** Rewrites the good bundle entry by entry; the function may return a replacement entry+bytes or null to drop it. */
    Path rewrite(String name, BiFunction<TarArchiveEntry, byte[], Object[]> change, Object[]... extra) throws Exception {
        Path out = tmp.resolve(name + ".tar");
        try (TarArchiveInputStream in = new TarArchiveInputStream(new BufferedInputStream(Files.newInputStream(good)));
             OutputStream os = Files.newOutputStream(out);
             TarArchiveOutputStream tar = new TarArchiveOutputStream(os)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            TarArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                byte[] data = in.readAllBytes();
                Object[] r = change.apply(e, data);
                if (r == null) continue;
                write(tar, (TarArchiveEntry) r[0], (byte[]) r[1]);
            }
            for (Object[] x : extra) write(tar, (TarArchiveEntry) x[0], (byte[]) x[1]);
        }
        return out;
    }

    static void write(TarArchiveOutputStream tar, TarArchiveEntry e, byte[] data) throws Exception {
        if (e.isFile()) e.setSize(data.length);
        tar.putArchiveEntry(e);
        if (e.isFile()) tar.write(data);
        tar.closeArchiveEntry();
    }

    void refused(Path bundle, String reason) throws Exception {
        Installer in = new Installer(root, keys.getPublic(), s -> { }, 30);
        BundleException e = assertThrows(BundleException.class, () -> in.install(bundle, "x86-cpu", false));
        assertTrue(e.getMessage().contains(reason), e.getMessage());
        try (Stream<Path> s = Files.list(root)) {
            assertEquals(0, s.count(), "nothing written for: " + reason);
        }
    }

    @Test
    void aFlippedByteIsRefused() throws Exception {
        refused(rewrite("flipped", (e, d) -> {
            if (e.getName().equals("app/quarkus-run.jar")) d[3] ^= 1;
            return new Object[] {e, d};
        }), "differs from the signed manifest: app/quarkus-run.jar");
    }

    @Test
    void aForeignKeyIsRefused() throws Exception {
        KeyPair other = BundleKeys.generate(tmp.resolve("other"));
        Installer in = new Installer(root, other.getPublic(), s -> { }, 30);
        var e = assertThrows(BundleException.class, () -> in.install(good, "x86-cpu", false));
        assertTrue(e.getMessage().contains("signature does not match"), e.getMessage());
        try (Stream<Path> s = Files.list(root)) {
            assertEquals(0, s.count());
        }
    }

    @Test
    void aMissingFileIsRefused() throws Exception {
        refused(rewrite("missing", (e, d) -> e.getName().equals("bin/healthcheck") ? null : new Object[] {e, d}),
                "missing from the bundle: bin/healthcheck");
    }

    @Test
    void anExtraFileIsRefused() throws Exception {
        TarArchiveEntry x = new TarArchiveEntry("app/backdoor.sh");
        refused(rewrite("extra", (e, d) -> new Object[] {e, d}, new Object[] {x, "rm -rf /".getBytes()}),
                "not in the signed manifest: app/backdoor.sh");
    }

    @Test
    void pathTraversalIsRefused() throws Exception {
        TarArchiveEntry x = new TarArchiveEntry("app/../../../etc/cron.d/evil", true);
        refused(rewrite("traversal", (e, d) -> new Object[] {e, d}, new Object[] {x, "* * * * * root evil".getBytes()}),
                "unsafe path");
    }

    @Test
    void aSymlinkEscapingTheRootIsRefused() throws Exception {
        TarArchiveEntry link = new TarArchiveEntry("app/etc-link", TarConstants.LF_SYMLINK);
        link.setLinkName("../../../../etc");
        refused(rewrite("symlink", (e, d) -> new Object[] {e, d}, new Object[] {link, new byte[0]}), "link");
    }

    @Test
    void unsignedAndWrongArchitectureAreRefused() throws Exception {
        refused(rewrite("unsigned", (e, d) -> e.getName().startsWith("MANIFEST") ? null : new Object[] {e, d}), "unsigned");
        Path app = Files.createDirectories(tmp.resolve("app2"));
        Files.writeString(app.resolve("quarkus-run.jar"), "x");
        Path foreign = tmp.resolve("foreign.tar");
        String other = BundleInfo.hostArch().equals("x86_64") ? "aarch64" : "x86_64";
        new BundleBuilder(app, "1.0.0", other).build(keys.getPrivate(), foreign);
        refused(foreign, "bundle is for " + other);
    }

    @Test
    void garbageIsRefused() throws Exception {
        Path junk = Files.write(tmp.resolve("junk.tar"), "this is not a tar file at all".repeat(40).getBytes(StandardCharsets.UTF_8));
        refused(junk, "");
    }
}
