package dev.enclave.device;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/**
 * Checks the running machine against a profile and says, line by line, what passes and what does not: CPU
 * features, cores, memory, disk, OpenCL, the SNPE libraries and DSP skeletons, egress blocked, clock in sync,
 * free space for models. Reads only (files under /proc and /sys, a few read-only commands); changes nothing.
 */
public final class DeviceDoctor {

    public enum Result { PASS, WARN, FAIL }

    public record Check(String name, Result result, String detail) {
    }

    private final Path sys;

    public DeviceDoctor() {
        this(Path.of("/"));
    }

    /** {@code sysRoot} lets tests point the doctor at a prepared tree. */
    public DeviceDoctor(Path sysRoot) {
        this.sys = sysRoot;
    }

    public List<Check> run(DeviceProfile p, Properties raw, Path dataDir) {
        List<Check> out = new ArrayList<>();
        String cpuinfo = read("proc/cpuinfo").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").equals("amd64") ? "x86_64" : System.getProperty("os.arch");
        out.add(new Check("cpu architecture", arch.equals(p.cpuArch()) ? Result.PASS : Result.FAIL,
                "machine " + arch + ", profile " + p.cpuArch()));
        if (p.cpuArch().equals("x86_64")) {
            boolean avx2 = cpuinfo.contains(" avx2"), avx512 = cpuinfo.contains(" avx512f");
            out.add(new Check("cpu features", avx2 ? Result.PASS : Result.WARN,
                    (avx512 ? "AVX-512 " : "") + (avx2 ? "AVX2 " : "no AVX2 (slow kernels) ") + (cpuinfo.contains(" fma") ? "FMA" : "")));
        } else {
            boolean dot = cpuinfo.contains("asimddp");
            out.add(new Check("cpu features", cpuinfo.contains("asimd") ? (dot ? Result.PASS : Result.WARN) : Result.FAIL,
                    (cpuinfo.contains("asimd") ? "NEON " : "no NEON ") + (dot ? "dotprod" : "no dotprod")));
        }
        int cores = Runtime.getRuntime().availableProcessors();
        out.add(new Check("cores", cores >= p.cores() ? Result.PASS : Result.WARN, cores + " online, profile expects " + p.cores()));
        long memMiB = memTotalMiB();
        out.add(new Check("memory", memMiB >= p.memoryBudgetMiB() ? Result.PASS : Result.FAIL,
                memMiB + " MiB, profile budget " + p.memoryBudgetMiB() + " MiB"));
        long freeMiB = dataDir.toFile().getUsableSpace() >> 20;
        if (freeMiB == 0) freeMiB = Path.of("/").toFile().getUsableSpace() >> 20;
        out.add(new Check("disk for models", freeMiB >= 8192 ? Result.PASS : freeMiB >= 2048 ? Result.WARN : Result.FAIL,
                freeMiB + " MiB free under " + dataDir));
        boolean wantsOpenCl = p.backendOrder().contains("opencl") || p.backendOrder().contains("cuda-opencl");
        List<String> icds = list("etc/OpenCL/vendors");
        out.add(new Check("OpenCL platforms", !icds.isEmpty() ? Result.PASS : wantsOpenCl ? Result.FAIL : Result.PASS,
                icds.isEmpty() ? "no ICD in /etc/OpenCL/vendors" + (wantsOpenCl ? "" : " (not needed by this profile)")
                        : String.join(", ", icds)));
        if (p.backendOrder().stream().anyMatch(b -> b.startsWith("snpe"))) {
            String rt = raw.getProperty("npu.runtime.path", "/usr/lib");
            boolean snpe = exists(rt + "/libSNPE.so") || exists("usr/lib/libSNPE.so");
            out.add(new Check("SNPE runtime", snpe ? Result.PASS : Result.FAIL, snpe ? "libSNPE.so found" : "libSNPE.so not under " + rt));
            boolean skel = false;
            for (String d : raw.getProperty("npu.adsp.library.path", "").split(";")) {
                for (String f : list(d.startsWith("/") ? d.substring(1) : d)) if (f.startsWith("libSnpeHtpV68Skel") || f.contains("Skel")) skel = true;
            }
            out.add(new Check("DSP skeleton (Hexagon v68)", skel ? Result.PASS : Result.FAIL,
                    skel ? "skel library present" : "no *Skel.so in ADSP_LIBRARY_PATH"));
        }
        out.add(egress());
        out.add(clock());
        return out;
    }

    /** Egress is blocked when there is no default route, or the enclave nftables table is loaded. */
    Check egress() {
        boolean defaultRoute = false;
        for (String line : read("proc/net/route").split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length > 2 && f[1].equals("00000000") && !f[0].equals("Iface")) defaultRoute = true;
        }
        String v6 = read("proc/net/ipv6_route");
        for (String line : v6.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 10 && f[0].equals("00000000000000000000000000000000") && f[1].equals("00") && !f[9].equals("lo")) defaultRoute = true;
        }
        String nft = sys.toString().equals("/") ? command("nft", "list", "table", "inet", "enclave") : "";
        boolean table = nft.contains("table inet enclave") && nft.contains("policy drop");
        if (!defaultRoute) return new Check("egress blocked", Result.PASS, "no default route");
        if (table) return new Check("egress blocked", Result.PASS, "nftables table inet enclave loaded (output policy drop)");
        return new Check("egress blocked", Result.FAIL, "a default route exists and the enclave nftables table is not loaded");
    }

    Check clock() {
        String out = sys.toString().equals("/") ? command("timedatectl", "show", "-p", "NTPSynchronized", "--value") : "";
        if (out.trim().equals("yes")) return new Check("clock in sync", Result.PASS, "NTP synchronized (local time source)");
        String adj = read("proc/sys/kernel/random/boot_id");
        return new Check("clock in sync", Result.WARN, out.isBlank() ? "cannot tell (no timedatectl)"
                + (adj.isEmpty() ? "" : "; set a local NTP source or the RTC") : "not synchronized: audit timestamps may drift");
    }

    private long memTotalMiB() {
        for (String line : read("proc/meminfo").split("\n")) {
            if (line.startsWith("MemTotal:")) return Long.parseLong(line.replaceAll("\\D+", "")) / 1024;
        }
        return Runtime.getRuntime().maxMemory() >> 20;
    }

    private String read(String rel) {
        try {
            return Files.readString(sys.resolve(rel));
        } catch (IOException e) {
            return "";
        }
    }

    private boolean exists(String path) {
        return Files.exists(sys.resolve(path.startsWith("/") ? path.substring(1) : path));
    }

    private List<String> list(String rel) {
        List<String> out = new ArrayList<>();
        Path d = sys.resolve(rel);
        if (!Files.isDirectory(d)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(d)) {
            for (Path p : ds) out.add(p.getFileName().toString());
        } catch (IOException ignored) {
            // unreadable: treated as absent
        }
        return out;
    }

    private static String command(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return "";
            }
            return new String(p.getInputStream().readAllBytes());
        } catch (IOException | InterruptedException e) {
            return "";
        }
    }
}
