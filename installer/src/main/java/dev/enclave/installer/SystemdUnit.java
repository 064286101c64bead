package dev.enclave.installer;

import dev.enclave.device.DeviceProfile;
import java.util.stream.Collectors;

/** The hardened systemd unit: its own user, a read-only system, no new privileges, no capabilities, limits from the profile. */
public final class SystemdUnit {

    private SystemdUnit() {
    }

    public static String render(DeviceProfile p) {
        String cpus = p.inferenceCores().isEmpty() ? "" : "CPUAffinity=" + p.inferenceCores().stream().map(String::valueOf)
                .collect(Collectors.joining(" ")) + "\n";
        return """
                [Unit]
                Description=Enclave private-AI appliance
                Documentation=file:///opt/enclave/current/README.md
                After=network.target
                
                [Service]
                Type=simple
                User=enclave
                Group=enclave
                Environment=ENCLAVE_DATA_DIR=/var/lib/enclave/data
                Environment=ENCLAVE_NATIVE_DIR=/var/lib/enclave/data/native
                Environment=ENCLAVE_JAVA_OPTS=-Dquarkus.config.locations=/etc/enclave/application.properties
                EnvironmentFile=-/etc/default/enclave
                ExecStart=/opt/enclave/current/bin/enclave serve --tls --host 0.0.0.0 --port 8443
                Restart=on-failure
                RestartSec=5
                # hardening
                NoNewPrivileges=yes
                ProtectSystem=strict
                ProtectHome=yes
                PrivateTmp=yes
                PrivateDevices=no
                ProtectKernelTunables=yes
                ProtectKernelModules=yes
                ProtectKernelLogs=yes
                ProtectControlGroups=yes
                ProtectClock=yes
                ProtectHostname=yes
                RestrictSUIDSGID=yes
                RestrictRealtime=yes
                RestrictNamespaces=yes
                LockPersonality=yes
                CapabilityBoundingSet=
                AmbientCapabilities=
                SystemCallArchitectures=native
                RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
                UMask=0027
                ReadWritePaths=/var/lib/enclave /var/log/enclave
                # limits from the device profile (%s)
                MemoryMax=%dM
                %sNice=%d
                IOWeight=%d
                LimitNOFILE=65536
                
                [Install]
                WantedBy=multi-user.target
                """.formatted(p.name(), p.memoryBudgetMiB() + 512, cpus, p.batterySaver() ? 10 : 0, p.batterySaver() ? 50 : 100);
    }
}
