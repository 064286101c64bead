package dev.enclave.installer;

import java.io.IOException;
import java.io.StringReader;
import java.util.Locale;
import java.util.Properties;

/** {@code bundle.properties}: what a bundle is (version, architecture, when made) — signed with everything else. */
public record BundleInfo(String version, String arch, long createdAt, String runtime) {

    public static final String FILE = "bundle.properties";

    public String toProperties() {
        return "format=1\nversion=" + version + "\narch=" + arch + "\ncreated=" + createdAt + "\nruntime=" + runtime + "\n";
    }

    public static BundleInfo parse(String text) throws IOException {
        Properties p = new Properties();
        p.load(new StringReader(text));
        String v = p.getProperty("version", "");
        if (!v.matches("[0-9]+(\\.[0-9]+){0,3}([-.][A-Za-z0-9.]+)?")) throw new IOException("bundle version '" + v + "' is malformed");
        String arch = p.getProperty("arch", "");
        if (!arch.equals("x86_64") && !arch.equals("aarch64") && !arch.equals("any")) {
            throw new IOException("bundle architecture '" + arch + "' is unknown");
        }
        return new BundleInfo(v, arch, Long.parseLong(p.getProperty("created", "0")), p.getProperty("runtime", "none"));
    }

    /** This machine's architecture in bundle terms. */
    public static String hostArch() {
        String a = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        return a.equals("amd64") || a.equals("x86_64") ? "x86_64" : a.equals("aarch64") || a.equals("arm64") ? "aarch64" : a;
    }

    /** Numeric comparison of dotted versions; a pre-release suffix sorts before the release. */
    public static int compare(String a, String b) {
        String[] x = a.split("[-]", 2), y = b.split("[-]", 2);
        String[] xa = x[0].split("\\."), ya = y[0].split("\\.");
        for (int i = 0; i < Math.max(xa.length, ya.length); i++) {
            long p = i < xa.length ? Long.parseLong(xa[i]) : 0, q = i < ya.length ? Long.parseLong(ya[i]) : 0;
            if (p != q) return Long.compare(p, q);
        }
        if (x.length != y.length) return x.length > y.length ? -1 : 1;
        return x.length == 2 ? x[1].compareTo(y[1]) : 0;
    }
}
