package dev.enclave.device;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.stream.Collectors;

/**
 * Renders a device profile into the files a box needs: the appliance's configuration, a systemd drop-in
 * (CPUAffinity, MemoryMax, Nice, IOWeight), an nftables ruleset that drops all egress and admits HTTPS only from
 * the LAN ranges, sysctl hardening, and the environment the NPU runtime needs.
 */
public final class DeviceRenderer {

    private DeviceRenderer() {
    }

    /** Writes every file under {@code out}; returns their paths relative to it. */
    public static List<String> render(DeviceProfile p, Properties raw, Path out) throws IOException {
        List<String> written = new ArrayList<>();
        write(out, "enclave/application.properties", appConfig(p, raw), written);
        write(out, "systemd/enclave.service.d/10-device-profile.conf", dropIn(p), written);
        write(out, "nftables/enclave.nft", nftables(raw), written);
        write(out, "sysctl.d/90-enclave.conf", sysctl(), written);
        if (p.backendOrder().stream().anyMatch(b -> b.startsWith("snpe"))) {
            write(out, "enclave/npu.env", npuEnv(raw), written);
        }
        return written;
    }

    private static void write(Path out, String rel, String text, List<String> written) throws IOException {
        Path f = out.resolve(rel);
        Files.createDirectories(f.getParent());
        Files.writeString(f, text);
        written.add(rel);
    }

    static String appConfig(DeviceProfile p, Properties raw) {
        int threads = p.inferenceCores().isEmpty() ? p.cores() : p.inferenceCores().size();
        StringBuilder sb = new StringBuilder("# Rendered from device profile '" + p.name() + "' (schema " + p.schemaVersion() + ")\n");
        sb.append("enclave.threads=").append(threads).append('\n');
        sb.append("enclave.backend.order=").append(String.join(",", p.runtimeBackendOrder())).append('\n');
        // the model gets what the KV cache does not: a quarter of the budget for KV, at most 4 GiB
        long kv = Math.min(4096, p.memoryBudgetMiB() / 4);
        sb.append("enclave.scheduler.kv-memory-mb=").append(kv).append('\n');
        // how many users decode at once; below 4 the server also keeps the vocabulary matrix at 6 bits (less memory)
        if (raw.getProperty("serve.max-active") != null) {
            sb.append("enclave.scheduler.max-active=").append(raw.getProperty("serve.max-active").trim()).append('\n');
        }
        // battery saver: always on if the profile says so; on a device with battery settings, whenever it runs on battery
        String saver = p.batterySaver() ? "true" : raw.getProperty("battery.threads") != null ? "auto" : "false";
        sb.append("enclave.battery-saver=").append(saver).append('\n');
        if (raw.getProperty("battery.threads") != null) {
            sb.append("enclave.battery-saver.threads=").append(raw.getProperty("battery.threads")).append('\n');
            sb.append("enclave.battery-saver.max-tokens-per-s=").append(raw.getProperty("battery.max-tokens-per-s", "8")).append('\n');
        }
        // where technicians may point crawls and admins imports: mounted shares and removable media, nothing else
        sb.append("enclave.rag.crawl-roots=").append(raw.getProperty("files.crawl-roots", "/srv/enclave/shares,/mnt").trim()).append('\n');
        sb.append("enclave.models.import-roots=").append(raw.getProperty("files.import-roots", "/media,/mnt").trim()).append('\n');
        sb.append("quarkus.http.host=0.0.0.0\n");
        sb.append("quarkus.http.port=").append(raw.getProperty("https.port", "8443")).append('\n');
        return sb.toString();
    }

    static String dropIn(DeviceProfile p) {
        String cpus = p.inferenceCores().isEmpty() ? ""
                : "CPUAffinity=" + p.inferenceCores().stream().map(String::valueOf).collect(Collectors.joining(" ")) + "\n";
        return "# Rendered from device profile '" + p.name() + "'\n[Service]\n" + cpus
                + "MemoryMax=" + (p.memoryBudgetMiB() + 512) + "M\n"
                + "Nice=" + (p.batterySaver() ? 10 : 0) + "\n"
                + "IOWeight=" + (p.batterySaver() ? 50 : 100) + "\n";
    }

    static String nftables(Properties raw) {
        String port = raw.getProperty("https.port", "8443");
        // open connections one address may hold (a slowloris client holds many, each trickling its headers)
        int perAddress = Integer.parseInt(raw.getProperty("https.max-connections-per-address", "32").trim());
        List<String> v4 = new ArrayList<>(), v6 = new ArrayList<>();
        for (String r : raw.getProperty("lan.ranges", "192.168.0.0/16").split(",")) {
            String t = r.trim();
            if (t.isEmpty()) continue;
            (t.contains(":") ? v6 : v4).add(t);
        }
        StringBuilder sb = new StringBuilder("""
                #!/usr/sbin/nft -f
                # Enclave: nothing leaves the box. All egress is dropped (loopback and replies to admitted connections
                # excepted); inbound, only HTTPS from the LAN ranges and established traffic, and at most
                # https.max-connections-per-address open connections from one address.
                table inet enclave
                delete table inet enclave
                table inet enclave {
                  set conn_v4 { type ipv4_addr; size 65535; flags dynamic; }
                  set conn_v6 { type ipv6_addr; size 65535; flags dynamic; }
                  chain input {
                    type filter hook input priority filter; policy drop;
                    iif "lo" accept
                    ct state established,related accept
                    ct state invalid drop
                    meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept
                """);
        sb.append("    tcp dport ").append(port).append(" ct state new add @conn_v4 { ip saddr ct count over ").append(perAddress)
                .append(" } reject with tcp reset\n");
        sb.append("    tcp dport ").append(port).append(" ct state new add @conn_v6 { ip6 saddr ct count over ").append(perAddress)
                .append(" } reject with tcp reset\n");
        if (!v4.isEmpty()) sb.append("    ip saddr { ").append(String.join(", ", v4)).append(" } tcp dport ").append(port).append(" accept\n");
        if (!v6.isEmpty()) sb.append("    ip6 saddr { ").append(String.join(", ", v6)).append(" } tcp dport ").append(port).append(" accept\n");
        sb.append("""
                  }
                  chain forward {
                    type filter hook forward priority filter; policy drop;
                  }
                  chain output {
                    type filter hook output priority filter; policy drop;
                    oif "lo" accept
                    ct state established,related accept
                    meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
                  }
                }
                """);
        return sb.toString();
    }

    static String sysctl() {
        return """
                # Enclave hardening: no routing, no redirects, no source routes, kernel pointers and logs hidden.
                net.ipv4.ip_forward = 0
                net.ipv6.conf.all.forwarding = 0
                net.ipv4.conf.all.accept_redirects = 0
                net.ipv4.conf.all.send_redirects = 0
                net.ipv4.conf.all.accept_source_route = 0
                net.ipv6.conf.all.accept_redirects = 0
                net.ipv4.conf.all.rp_filter = 1
                net.ipv4.tcp_syncookies = 1
                kernel.kptr_restrict = 2
                kernel.dmesg_restrict = 1
                kernel.unprivileged_bpf_disabled = 1
                fs.protected_symlinks = 1
                fs.protected_hardlinks = 1
                vm.swappiness = 10
                """;
    }

    static String npuEnv(Properties raw) {
        return "# The Qualcomm runtime: where the DSP finds its skeleton libraries, where SNPE/QAIRT live\n"
                + "ADSP_LIBRARY_PATH=" + raw.getProperty("npu.adsp.library.path", "/usr/lib/rfsa/adsp;/dsp") + "\n"
                + "LD_LIBRARY_PATH=" + raw.getProperty("npu.runtime.path", "/usr/lib") + "\n";
    }
}
