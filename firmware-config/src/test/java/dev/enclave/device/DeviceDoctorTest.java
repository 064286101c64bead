package dev.enclave.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The doctor reads a machine's /proc and /sys: here prepared trees stand for an x86 server and a QCS6490 board. */
class DeviceDoctorTest {

    @TempDir
    Path sys;

    Map<String, DeviceDoctor.Result> results(String profile, String route) throws Exception {
        Files.createDirectories(sys.resolve("proc/net"));
        Files.writeString(sys.resolve("proc/cpuinfo"), "processor : 0\nflags : fpu sse avx avx2 fma avx512f\n");
        Files.writeString(sys.resolve("proc/meminfo"), "MemTotal:       67108864 kB\n");
        Files.writeString(sys.resolve("proc/net/route"), "Iface\tDestination\tGateway\n" + route);
        List<DeviceDoctor.Check> checks = new DeviceDoctor(sys).run(DeviceProfile.builtIn(profile), DeviceProfile.rawBuiltIn(profile), sys);
        assertTrue(checks.size() >= 7);
        return checks.stream().collect(Collectors.toMap(DeviceDoctor.Check::name, DeviceDoctor.Check::result));
    }

    @Test
    void egressIsJudgedByTheRoutingTable() throws Exception {
        assertEquals(DeviceDoctor.Result.PASS, results("x86-cpu", "eth0\t0000A8C0\t00000000\n").get("egress blocked"));
        assertEquals(DeviceDoctor.Result.FAIL, results("x86-cpu", "eth0\t00000000\t0100A8C0\n").get("egress blocked"));
    }

    @Test
    void npuProfileNeedsSnpeAndTheDspSkeleton() throws Exception {
        Map<String, DeviceDoctor.Result> without = results("qcs6490", "");
        assertEquals(DeviceDoctor.Result.FAIL, without.get("SNPE runtime"));
        assertEquals(DeviceDoctor.Result.FAIL, without.get("DSP skeleton (Hexagon v68)"));
        Files.createDirectories(sys.resolve("opt/qcom/qairt/lib/aarch64-oe-linux-gcc11.2"));
        Files.writeString(sys.resolve("opt/qcom/qairt/lib/aarch64-oe-linux-gcc11.2/libSNPE.so"), "");
        Files.createDirectories(sys.resolve("opt/qcom/qairt/lib/hexagon-v68/unsigned"));
        Files.writeString(sys.resolve("opt/qcom/qairt/lib/hexagon-v68/unsigned/libSnpeHtpV68Skel.so"), "");
        Map<String, DeviceDoctor.Result> with = results("qcs6490", "");
        assertEquals(DeviceDoctor.Result.PASS, with.get("SNPE runtime"));
        assertEquals(DeviceDoctor.Result.PASS, with.get("DSP skeleton (Hexagon v68)"));
        assertEquals(DeviceDoctor.Result.PASS, with.get("memory"));
    }
}
