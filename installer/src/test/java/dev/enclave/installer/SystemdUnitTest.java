package dev.enclave.installer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.device.DeviceProfile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The installed unit passes {@code systemd-analyze verify} for every profile. */
class SystemdUnitTest {

    @TempDir
    Path tmp;

    @Test
    void unitsVerify() throws Exception {
        boolean sd = Files.isExecutable(Path.of("/usr/bin/systemd-analyze"));
        if (System.getenv("CI") == null) Assumptions.assumeTrue(sd, "systemd is not installed here");
        assertTrue(sd, "CI must install systemd (.ci/run does)");
        Path exe = Files.writeString(tmp.resolve("enclave"), "#!/bin/sh\n");
        exe.toFile().setExecutable(true);
        for (String name : DeviceProfile.BUILT_IN) {
            // the real ExecStart lives under /opt/enclave on an installed box; point it at a stand-in that exists
            String unit = SystemdUnit.render(DeviceProfile.builtIn(name)).replace("/opt/enclave/current/bin/enclave", exe.toString());
            Path f = Files.writeString(tmp.resolve("enclave-" + name + ".service"), unit);
            Process p = new ProcessBuilder("systemd-analyze", "verify", f.toString()).redirectErrorStream(true).start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            String out = new String(p.getInputStream().readAllBytes());
            assertEquals(0, p.exitValue(), name + ": " + out);
        }
    }
}
