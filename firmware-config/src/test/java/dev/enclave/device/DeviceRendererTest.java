package dev.enclave.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every built-in profile renders; the nftables rules pass {@code nft -c}; bad profiles are refused naming the field. */
class DeviceRendererTest {

    @TempDir
    Path tmp;

    static boolean tool(String name) {
        return Files.isExecutable(Path.of("/usr/sbin", name)) || Files.isExecutable(Path.of("/usr/bin", name));
    }

    static String run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ":\n" + out);
        return out;
    }

    @Test
    void everyProfileRendersAndItsFirewallChecks() throws Exception {
        boolean nft = tool("nft");
        if (System.getenv("CI") == null) Assumptions.assumeTrue(nft, "nftables is not installed here");
        assertTrue(nft, "CI must install nftables (.ci/run does)");
        for (String name : DeviceProfile.BUILT_IN) {
            Path out = tmp.resolve(name);
            List<String> files = DeviceRenderer.render(DeviceProfile.builtIn(name), DeviceProfile.rawBuiltIn(name), out);
            assertTrue(files.contains("nftables/enclave.nft"));
            String rules = Files.readString(out.resolve("nftables/enclave.nft"));
            assertTrue(rules.contains("chain output") && rules.contains("policy drop"), rules);
            assertTrue(rules.contains("ip saddr ct count over 32") && rules.contains("ip6 saddr ct count over 32"),
                    "a per-address connection cap (slowloris): " + rules);
            run("nft", "-c", "-f", out.resolve("nftables/enclave.nft").toString());
            Properties app = new Properties();
            app.load(new StringReader(Files.readString(out.resolve("enclave/application.properties"))));
            assertTrue(Integer.parseInt(app.getProperty("enclave.threads")) >= 1);
            assertEquals("/srv/enclave/shares,/mnt", app.getProperty("enclave.rag.crawl-roots"), "crawls off the data directory");
            assertEquals("/media,/mnt", app.getProperty("enclave.models.import-roots"));
            String dropIn = Files.readString(out.resolve("systemd/enclave.service.d/10-device-profile.conf"));
            assertTrue(dropIn.contains("MemoryMax=") && dropIn.contains("IOWeight="));
        }
        Path qcs = tmp.resolve("qcs6490");
        assertTrue(Files.readString(qcs.resolve("systemd/enclave.service.d/10-device-profile.conf")).contains("CPUAffinity=4 5 6 7"));
        assertTrue(Files.readString(qcs.resolve("enclave/application.properties")).contains("enclave.scheduler.max-active=2"));
        assertTrue(Files.readString(qcs.resolve("enclave/npu.env")).contains("ADSP_LIBRARY_PATH=/opt/qcom/qairt/lib/hexagon-v68"));
        assertTrue(Files.readString(qcs.resolve("nftables/enclave.nft")).contains("ip saddr { 192.168.0.0/16, 10.0.0.0/8 } tcp dport 8443 accept"));
    }

    @Test
    void theDropInPassesSystemdAnalyze() throws Exception {
        boolean sd = tool("systemd-analyze");
        if (System.getenv("CI") == null) Assumptions.assumeTrue(sd, "systemd is not installed here");
        assertTrue(sd, "CI must install systemd (.ci/run does)");
        Path exe = Files.writeString(tmp.resolve("enclave"), "#!/bin/sh\n");
        exe.toFile().setExecutable(true);
        // the drop-in's directives inside a minimal unit: systemd-analyze checks each one
        String unit = "[Unit]\nDescription=drop-in check\n[Service]\nExecStart=" + exe + "\n"
                + DeviceRenderer.dropIn(DeviceProfile.builtIn("qcs6490")).replace("[Service]\n", "").replaceAll("(?m)^#.*\n", "");
        Path f = Files.writeString(tmp.resolve("enclave-dropin-check.service"), unit);
        run("systemd-analyze", "verify", f.toString());
    }

    @Test
    void aBrokenProfileIsRefusedNamingTheField() {
        Properties p = new Properties();
        p.setProperty("schema.version", "1");
        p.setProperty("cpu.arch", "x86_64");
        p.setProperty("cpu.cores", "8");
        p.setProperty("inference.cores", "2,9");
        p.setProperty("memory.budget.mib", "lots");
        p.setProperty("backend.order", "cpu,quantum");
        p.setProperty("lan.ranges", "everyone");
        p.setProperty("https.port", "99999");
        var e = assertThrows(IllegalArgumentException.class, () -> DeviceProfile.parse("broken", p));
        for (String field : List.of("inference.cores", "memory.budget.mib", "backend.order", "lan.ranges", "https.port")) {
            assertTrue(e.getMessage().contains(field), field + " in: " + e.getMessage());
        }
    }
}
