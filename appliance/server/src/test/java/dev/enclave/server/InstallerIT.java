package dev.enclave.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The operator's path from the README, with the real application and no network (everything inside
 * {@code unshare -n}): make keys and bundles, install into a temporary root, upgrade (the new release is started
 * and health-checked), watch a broken upgrade roll back by itself, refuse a tampered bundle, install with the
 * bundle's own {@code install.sh}, and run the jlink'ed runtime a bundle carries with the start-up cache the installer
 * made for it.
 */
class InstallerIT {

    @Test
    void bundleInstallUpgradeFailedUpgradeRollbackOffline() throws Exception {
        boolean ok = NoNetworkIT.unshareWorks();
        if (System.getenv("CI") == null) Assumptions.assumeTrue(ok, "unshare -n is not permitted here");
        assertTrue(ok, "CI must allow unshare -n");
        Path dir = Files.createTempDirectory("installer-it");
        Path app = Path.of("target/quarkus-app").toAbsolutePath();
        String javaHome = System.getProperty("java.home");
        String e = "\"" + javaHome + "/bin/java\" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -jar " + app.resolve("quarkus-run.jar");
        String script = String.join("\n",
                "set -eux",
                "cd " + dir,
                "export JAVA_HOME=\"" + javaHome + "\"",
                "ip link set lo up",
                "test \"$(ip -o link show | wc -l)\" = 1",
                e + " bundle keygen --out keys",
                // 1.0.0 carries its own jlink'ed Java runtime
                e + " bundle create --out enclave-1.0.0.tar --key keys/enclave-bundle.key --version 1.0.0",
                "tar -tf enclave-1.0.0.tar | grep -q '^runtime/bin/java$'",
                "tar -tf enclave-1.0.0.tar | grep -q '^sbom.cdx.json$'",
                e + " bundle create --out enclave-1.1.0.tar --key keys/enclave-bundle.key --version 1.1.0 --no-jlink",
                // 1.2.0: a release that cannot start (its application jar is broken)
                "cp -r " + app + " broken-app && printf 'not a jar' > broken-app/quarkus-run.jar",
                e + " bundle create --out enclave-1.2.0.tar --key keys/enclave-bundle.key --version 1.2.0 --no-jlink --app broken-app",
                e + " verify enclave-1.0.0.tar --pubkey keys/enclave-bundle.pub",
                e + " install enclave-1.0.0.tar --pubkey keys/enclave-bundle.pub --root " + dir.resolve("root") + " --profile x86-cpu",
                e + " status --root " + dir.resolve("root") + " --json | grep -q '\"current\":\"1.0.0\"'",
                // the installed release runs on its own runtime, with the start-up cache the installer made for it (a
                // cache that does not fit the runtime or the paths fails the start under AOTMode=on)
                dir.resolve("root") + "/opt/enclave/current/runtime/bin/java -version",
                "if tar -tf enclave-1.0.0.tar | grep -q 'app.aot'; then echo 'a bundle carries a start-up cache'; exit 1; fi",
                "test -s " + dir.resolve("root") + "/opt/enclave/releases/1.0.0/app/app.aot",
                "ENCLAVE_JAVA_OPTS=-XX:AOTMode=on " + dir.resolve("root") + "/opt/enclave/current/bin/enclave tokenize --text 'Once upon a time' --json"
                        + " | grep -q '\"tokens\"'",
                "ENCLAVE_HEALTH_PORT=18471 " + e + " upgrade enclave-1.1.0.tar --root " + dir.resolve("root") + " --health-timeout 240",
                e + " status --root " + dir.resolve("root") + " --json | grep -q '\"current\":\"1.1.0\"'",
                "test -s " + dir.resolve("root") + "/opt/enclave/releases/1.1.0/app/app.aot",
                "if ENCLAVE_HEALTH_PORT=18472 " + e + " upgrade enclave-1.2.0.tar --root " + dir.resolve("root")
                        + " --health-timeout 60 > upgrade-1.2.0.log 2>&1; then echo 'broken upgrade succeeded'; exit 1; fi",
                "grep -q 'rolled back to 1.1.0' upgrade-1.2.0.log",
                e + " status --root " + dir.resolve("root") + " --json | grep -q '\"current\":\"1.1.0\"'",
                "test \"$(readlink " + dir.resolve("root") + "/opt/enclave/current)\" = releases/1.1.0",
                // a flipped byte is refused and nothing is written
                "cp enclave-1.1.0.tar tampered.tar",
                "printf 'X' | dd of=tampered.tar bs=1 seek=100000 conv=notrunc 2>/dev/null",
                "if " + e + " install tampered.tar --pubkey keys/enclave-bundle.pub --root " + dir.resolve("root2") + "; then exit 1; fi",
                "test ! -e " + dir.resolve("root2") + "/opt",
                // the bundle's own install.sh: coreutils and tar, then the bundled installer
                "tar -xf enclave-1.1.0.tar install.sh",
                "ENCLAVE_ROOT=" + dir.resolve("root3") + " sh install.sh enclave-1.1.0.tar keys/enclave-bundle.pub install --profile qcs6490 --force",
                e + " status --root " + dir.resolve("root3") + " --json | grep -q '\"profile\":\"qcs6490\"'",
                e + " device render --profile qcs6490 --out rendered",
                "test -s rendered/nftables/enclave.nft");
        Process p = new ProcessBuilder("unshare", "-n", "bash", "-c", script).redirectErrorStream(true)
                .redirectOutput(dir.resolve("it.log").toFile()).start();
        assertTrue(p.waitFor(900, TimeUnit.SECONDS), "timed out");
        String log = Files.readString(dir.resolve("it.log"));
        assertEquals(0, p.exitValue(), log.length() > 20000 ? log.substring(log.length() - 20000) : log);
        // about a gigabyte of bundles and roots: kept only when the test fails, for diagnosis
        try (var files = Files.walk(dir)) {
            for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
        }
    }
}
