package dev.enclave.installer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Install → status → upgrade → failed upgrade rolls back by itself → manual rollback → uninstall, in a temp root. */
class InstallerTest {

    @TempDir
    Path tmp;
    KeyPair keys;
    Path root;
    List<String> log = new ArrayList<>();

    @BeforeEach
    void keys() throws Exception {
        keys = BundleKeys.generate(tmp.resolve("keys"));
        root = Files.createDirectories(tmp.resolve("root"));
    }

    Path bundle(String version, String health) throws Exception {
        Path app = Files.createDirectories(tmp.resolve("app-" + version));
        Files.writeString(app.resolve("quarkus-run.jar"), "application " + version);
        Files.createDirectories(app.resolve("lib/main"));
        Files.writeString(app.resolve("lib/main/dep.jar"), "dependency");
        Files.writeString(app.resolve("app.aot"), "the build machine's start-up cache"); // as ./enclave leaves one
        Path out = tmp.resolve("enclave-" + version + ".tar");
        new BundleBuilder(app, version, BundleInfo.hostArch()).healthcheck(health).build(keys.getPrivate(), out);
        return out;
    }

    static final String HEALTHY = "#!/bin/sh\necho ok from $ENCLAVE_RELEASE\nexit 0\n";
    static final String BROKEN = "#!/bin/sh\necho the new release does not start\nexit 1\n";

    Installer installer() {
        return new Installer(root, keys.getPublic(), log::add, 60);
    }

    @Test
    void installUpgradeFailedUpgradeRollbackUninstall() throws Exception {
        Installer in = installer();
        assertEquals("1.0.0", in.install(bundle("1.0.0", HEALTHY), "x86-cpu", false));
        Installer.Status s = in.status();
        assertEquals("1.0.0", s.current());
        assertEquals("x86-cpu", s.profile());
        assertEquals(Path.of("releases/1.0.0"), Files.readSymbolicLink(root.resolve("opt/enclave/current")));
        assertEquals("application 1.0.0", Files.readString(root.resolve("opt/enclave/current/app/quarkus-run.jar")));
        assertTrue(Files.isExecutable(root.resolve("opt/enclave/current/bin/enclave")));
        // the build machine's start-up cache is not bundled; this pretend application cannot make one, and installs anyway
        assertFalse(Files.exists(root.resolve("opt/enclave/current/app/app.aot")));
        assertFalse(Files.exists(root.resolve("opt/enclave/current/app/app.aot.tmp")));
        assertTrue(log.stream().anyMatch(l -> l.startsWith("no start-up cache for 1.0.0: its training run failed")), log.toString());
        assertEquals("rwxr-x---", PosixFilePermissions.toString(Files.getPosixFilePermissions(root.resolve("var/lib/enclave/data"))));
        String unit = Files.readString(root.resolve("etc/systemd/system/enclave.service"));
        assertTrue(unit.contains("NoNewPrivileges=yes") && unit.contains("ProtectSystem=strict") && unit.contains("MemoryMax="));
        assertTrue(Files.readString(root.resolve("etc/enclave/application.properties")).contains("enclave.auth.enabled=true"));
        assertThrows(BundleException.class, () -> in.install(bundle("1.0.1", HEALTHY), "x86-cpu", false), "already installed");

        // operator data written under 1.0.0
        Files.writeString(root.resolve("var/lib/enclave/data/catalog.sqlite"), "v1 data");
        assertEquals("1.1.0", in.upgrade(bundle("1.1.0", HEALTHY), false));
        assertEquals("1.1.0", in.status().current());
        assertEquals("1.0.0", in.status().previous());
        assertTrue(log.stream().anyMatch(l -> l.contains("ok from")), log.toString());

        // 1.1.0 migrates the data, then 1.2.0 fails its health check: back to 1.1.0 with 1.1.0's data
        Files.writeString(root.resolve("var/lib/enclave/data/catalog.sqlite"), "v1.1 data");
        BundleException failed = assertThrows(BundleException.class, () -> in.upgrade(bundle("1.2.0", BROKEN), false));
        assertTrue(failed.getMessage().contains("rolled back to 1.1.0"), failed.getMessage());
        assertEquals("1.1.0", in.status().current());
        assertEquals(Path.of("releases/1.1.0"), Files.readSymbolicLink(root.resolve("opt/enclave/current")));
        assertEquals("v1.1 data", Files.readString(root.resolve("var/lib/enclave/data/catalog.sqlite")));
        assertTrue(log.stream().anyMatch(l -> l.contains("does not start")));

        // downgrades need --force
        var down = assertThrows(BundleException.class, () -> in.upgrade(bundle("0.9.0", HEALTHY), false));
        assertTrue(down.getMessage().contains("downgrade"));

        // manual rollback: to 1.0.0, with the data as it was before the upgrade to 1.1.0
        assertEquals("1.0.0", in.rollback());
        assertEquals("v1 data", Files.readString(root.resolve("var/lib/enclave/data/catalog.sqlite")));
        assertThrows(BundleException.class, in::rollback, "only one step back is kept");
        assertTrue(in.status().history().size() >= 4);

        in.uninstall(false);
        assertFalse(Files.exists(root.resolve("opt/enclave")));
        assertTrue(Files.exists(root.resolve("var/lib/enclave/data/catalog.sqlite")), "data kept");
        assertNull(in.status().current());
        in.uninstall(true);
        assertFalse(Files.exists(root.resolve("var/lib/enclave")));
    }

    @Test
    void importModelVerifiesItsHash() throws Exception {
        Installer in = installer();
        Path usb = Files.writeString(tmp.resolve("model.gguf"), "GGUF pretend weights");
        String sha = Installer.sha256(usb);
        var bad = assertThrows(BundleException.class, () -> in.importModel(usb, "0".repeat(64)));
        assertTrue(bad.getMessage().contains("SHA-256"));
        assertFalse(Files.exists(root.resolve("var/lib/enclave/models/model.gguf")));
        Path copied = in.importModel(usb, sha);
        assertEquals(sha, Installer.sha256(copied));
    }

    @Test
    void versionsCompareNumerically() {
        assertTrue(BundleInfo.compare("1.10.0", "1.9.3") > 0);
        assertTrue(BundleInfo.compare("1.0.0", "1.0.0-rc1") > 0);
        assertEquals(0, BundleInfo.compare("2.0", "2.0.0"));
    }
}
