package dev.enclave.server.panel;

import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** What the OS exposes about the box: CPU temperature (thermal zones) and power source (AC or battery). */
final class SystemProbe {

    private SystemProbe() {
    }

    /** Hottest CPU-ish thermal zone in °C, if the kernel exposes one. */
    static Optional<Double> cpuTemperature() {
        Path zones = Path.of("/sys/class/thermal");
        if (!Files.isDirectory(zones)) return Optional.empty();
        double best = Double.NaN;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(zones, "thermal_zone*")) {
            for (Path z : ds) {
                try {
                    double t = Long.parseLong(Files.readString(z.resolve("temp")).trim()) / 1000.0;
                    if (Double.isNaN(best) || t > best) best = t;
                } catch (Exception ignored) {
                    // zone without a readable temperature
                }
            }
        } catch (Exception e) {
            return Optional.empty();
        }
        return Double.isNaN(best) ? Optional.empty() : Optional.of(best);
    }

    /** "AC power" / "battery 83% (discharging)", if the kernel exposes a power supply. */
    static Optional<String> powerSource() {
        Path supplies = Path.of("/sys/class/power_supply");
        if (!Files.isDirectory(supplies)) return Optional.empty();
        String battery = null;
        boolean ac = false;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(supplies)) {
            for (Path s : ds) {
                String type = read(s.resolve("type"));
                if ("Mains".equals(type) && "1".equals(read(s.resolve("online")))) ac = true;
                if ("Battery".equals(type)) {
                    battery = "battery " + read(s.resolve("capacity")) + "% (" + read(s.resolve("status")).toLowerCase() + ")";
                }
            }
        } catch (Exception e) {
            return Optional.empty();
        }
        if (ac) return Optional.of(battery == null ? "AC power" : "AC power, " + battery);
        return Optional.ofNullable(battery);
    }

    private static String read(Path p) {
        try {
            return Files.readString(p).trim();
        } catch (Exception e) {
            return "";
        }
    }
}
