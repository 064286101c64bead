package dev.enclave.device;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * What the appliance must know about the box it runs on: which cores inference may use, how much memory model
 * and KV cache may take, the order in which accelerators are tried. Profiles ship as versioned properties files
 * under {@code profiles/NAME.properties} and are validated when read.
 */
public record DeviceProfile(String name, int schemaVersion, String description, String cpuArch, int cores,
                            List<Integer> inferenceCores, long memoryBudgetMiB, List<String> backendOrder,
                            boolean batterySaver) {

    public static final int SCHEMA_VERSION = 1;
    public static final List<String> BUILT_IN = List.of("qcs6490", "x86-cpu", "x86-nvidia", "x86-intel-gpu", "arm64-generic");

    /** The profile's raw settings, for the renderer's optional keys (network ranges, NPU paths, battery saver). */
    public static Properties rawBuiltIn(String name) {
        builtIn(name); // validates
        try (InputStream in = DeviceProfile.class.getClassLoader().getResourceAsStream("profiles/" + name + ".properties")) {
            Properties p = new Properties();
            p.load(in);
            return p;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static DeviceProfile builtIn(String name) {
        if (!BUILT_IN.contains(name)) {
            throw new IllegalArgumentException("unknown device profile '" + name + "' (known: " + String.join(", ", BUILT_IN) + ")");
        }
        try (InputStream in = DeviceProfile.class.getClassLoader().getResourceAsStream("profiles/" + name + ".properties")) {
            if (in == null) throw new IllegalStateException("profile resource missing for " + name);
            Properties p = new Properties();
            p.load(in);
            return parse(name, p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static DeviceProfile parse(String name, Properties p) {
        List<String> errors = new ArrayList<>();
        int schema = intOf(p, "schema.version", errors);
        if (schema != SCHEMA_VERSION) errors.add("schema.version must be " + SCHEMA_VERSION + ", is " + schema);
        String arch = p.getProperty("cpu.arch", "");
        if (!arch.equals("x86_64") && !arch.equals("aarch64")) errors.add("cpu.arch must be x86_64 or aarch64");
        int cores = intOf(p, "cpu.cores", errors);
        List<Integer> pinned = new ArrayList<>();
        for (String c : p.getProperty("inference.cores", "").split(",")) {
            if (c.isBlank()) continue;
            try {
                int core = Integer.parseInt(c.trim());
                if (core < 0 || core >= cores) errors.add("inference.cores names core " + core + " outside [0, " + cores + ")");
                pinned.add(core);
            } catch (NumberFormatException e) {
                errors.add("inference.cores must be a comma-separated list of core numbers");
            }
        }
        long mem = intOf(p, "memory.budget.mib", errors);
        if (mem < 256) errors.add("memory.budget.mib must be at least 256");
        List<String> order = new ArrayList<>();
        for (String b : p.getProperty("backend.order", "cpu").split(",")) {
            String t = b.trim();
            if (!List.of("cpu", "opencl", "snpe-dsp", "snpe-gpu", "snpe-cpu", "cuda-opencl").contains(t)) {
                errors.add("backend.order names unknown backend '" + t + "'");
            }
            order.add(t);
        }
        for (String r : p.getProperty("lan.ranges", "").split(",")) {
            String t = r.trim();
            if (!t.isEmpty() && !t.matches("(\\d{1,3}\\.){3}\\d{1,3}/\\d{1,2}|[0-9a-fA-F:]+/\\d{1,3}")) {
                errors.add("lan.ranges: '" + t + "' is not an address range like 192.168.0.0/16");
            }
        }
        if (p.getProperty("serve.max-active") != null) {
            int active = intOf(p, "serve.max-active", errors);
            if (active < 1 || active > 256) errors.add("serve.max-active must be in 1..256");
        }
        if (p.getProperty("https.port") != null) {
            int port = intOf(p, "https.port", errors);
            if (port < 1 || port > 65535) errors.add("https.port must be in 1..65535");
        }
        if (!errors.isEmpty()) {
            throw new IllegalArgumentException("device profile '" + name + "' is invalid: " + String.join("; ", errors));
        }
        return new DeviceProfile(name, schema, p.getProperty("description", name), arch, cores, List.copyOf(pinned), mem,
                List.copyOf(order), Boolean.parseBoolean(p.getProperty("battery.saver", "false")));
    }

    private static int intOf(Properties p, String key, List<String> errors) {
        String v = p.getProperty(key);
        if (v == null) {
            errors.add(key + " is required");
            return -1;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            errors.add(key + " must be an integer");
            return -1;
        }
    }

    /**
     * The order in the runtime's backend names ({@code --backend}): the SNPE runtimes are the NPU engine's, CUDA's
     * OpenCL is OpenCL; repeated names collapse.
     */
    public List<String> runtimeBackendOrder() {
        java.util.LinkedHashSet<String> names = new java.util.LinkedHashSet<>();
        for (String b : backendOrder()) names.add(b.startsWith("snpe") ? "npu" : b.equals("cuda-opencl") ? "opencl" : b);
        return List.copyOf(names);
    }
}
