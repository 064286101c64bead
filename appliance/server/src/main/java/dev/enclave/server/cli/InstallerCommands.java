package dev.enclave.server.cli;

import dev.enclave.device.DeviceDoctor;
import dev.enclave.device.DeviceProfile;
import dev.enclave.device.DeviceRenderer;
import dev.enclave.installer.BundleBuilder;
import dev.enclave.installer.BundleException;
import dev.enclave.installer.BundleInfo;
import dev.enclave.installer.BundleKeys;
import dev.enclave.installer.Installer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.KeyStore;
import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The offline installer and device commands: bundle, install, upgrade, rollback, uninstall, verify, status, ... */
public final class InstallerCommands {

    private InstallerCommands() {
    }

    static int fail(String msg) {
        System.err.println("enclave: " + msg);
        return 1;
    }

    static Path pinnedKey(Path given, Path root) {
        return given != null ? given : root.resolve("etc/enclave/bundle.pub");
    }

    static PublicKey key(Path p) throws Exception {
        if (!Files.isRegularFile(p)) throw new BundleException("no pinned public key at " + p + " (give --pubkey)");
        return BundleKeys.readPublic(p);
    }

    @Command(name = "bundle", mixinStandardHelpOptions = true, description = "Make signing keys and signed offline bundles.",
            subcommands = {Keygen.class, Create.class})
    public static class Bundle implements Runnable {
        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            spec.commandLine().usage(System.out);
        }
    }

    @Command(name = "keygen", mixinStandardHelpOptions = true, description = "Make an Ed25519 key pair for signing bundles.")
    public static class Keygen implements Callable<Integer> {
        @Option(names = "--out", required = true, paramLabel = "DIR")
        Path out;

        @Override
        public Integer call() throws Exception {
            try {
                BundleKeys.generate(out);
            } catch (java.io.IOException e) {
                return fail(e.getMessage());
            }
            System.out.println("private key " + out.resolve(BundleKeys.PRIVATE) + " (keep it offline)");
            System.out.println("public key  " + out.resolve(BundleKeys.PUBLIC) + " (pin it on the appliances)");
            return 0;
        }
    }

    // no standard --version here: this command's --version names the bundle's (the mixin's took it and broke --help)
    @Command(name = "create",
            description = "Make one signed bundle: the application, a jlink'ed Java runtime, models, configuration, device profiles, SBOM, install.sh.")
    public static class Create implements Callable<Integer> {
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.") boolean help;
        @Option(names = "--out", required = true, paramLabel = "FILE") Path out;
        @Option(names = "--key", required = true, paramLabel = "FILE", description = "Ed25519 private key (bundle keygen).") Path key;
        @Option(names = "--version", description = "Bundle version (default: this build's).") String version;
        @Option(names = "--app", paramLabel = "DIR", description = "Application directory (default: this running application's quarkus-app).") Path app;
        @Option(names = "--model", paramLabel = "FILE", description = "Model to ship (repeatable).") List<Path> models = new ArrayList<>();
        @Option(names = "--config", paramLabel = "FILE", description = "Default application.properties.") Path config;
        @Option(names = "--sbom", paramLabel = "FILE", description = "CycloneDX SBOM (default: bom.json beside the application).") Path sbom;
        @Option(names = "--no-jlink", description = "Do not include a Java runtime (the target then needs Java 25).") boolean noJlink;
        @Option(names = "--arch", description = "Target architecture (default: this machine's).") String arch;

        @Override
        public Integer call() throws Exception {
            Path appDir = app != null ? app : runningApp();
            if (appDir == null || !Files.isRegularFile(appDir.resolve("quarkus-run.jar"))) {
                return fail("no application directory (quarkus-app with quarkus-run.jar); give --app");
            }
            Path bom = sbom != null ? sbom : appDir.resolveSibling("bom.json");
            String v = version != null ? version : VersionProvider.version();
            if (!v.matches("[0-9]+(\\.[0-9]+){0,3}([-.][A-Za-z0-9.]+)?")) return fail("this build has no release number; give --version X.Y.Z");
            BundleBuilder b = new BundleBuilder(appDir, v,
                    arch != null ? arch : BundleInfo.hostArch()).jlink(!noJlink).config(config);
            if (Files.isRegularFile(bom)) b.sbom(bom);
            else System.err.println("enclave: warning: no SBOM at " + bom + " (the build makes target/bom.json)");
            for (Path m : models) {
                if (!Files.isRegularFile(m)) return fail("model not found: " + m);
                b.model(m);
            }
            try {
                b.build(BundleKeys.readPrivate(key), out);
            } catch (BundleException e) {
                return fail(e.getMessage());
            }
            System.out.println("bundle " + out + " (" + Files.size(out) / (1 << 20) + " MiB)");
            return 0;
        }

        static Path runningApp() {
            try {
                Path jar = Path.of(Create.class.getProtectionDomain().getCodeSource().getLocation().toURI());
                for (Path p = jar; p != null; p = p.getParent()) {
                    if (Files.isRegularFile(p.resolve("quarkus-run.jar"))) return p;
                }
            } catch (Exception ignored) {
                // not running from a packaged application
            }
            return null;
        }
    }

    abstract static class RootOptions {
        @Option(names = "--root", defaultValue = "/", paramLabel = "DIR", description = "Install root (default: /).") Path root;
        @Option(names = "--health-timeout", defaultValue = "180", description = "Seconds an upgraded release has to become healthy.") long healthTimeout;

        Installer installer(PublicKey key) {
            return new Installer(root, key, System.out::println, healthTimeout);
        }
    }

    @Command(name = "install", mixinStandardHelpOptions = true, description = "Verify a bundle against the pinned key and install it.")
    public static class Install extends RootOptions implements Callable<Integer> {
        @Parameters(paramLabel = "BUNDLE") Path bundle;
        @Option(names = "--pubkey", required = true, paramLabel = "FILE", description = "Public key to trust (pinned for later upgrades).") Path pubkey;
        @Option(names = "--profile", defaultValue = "x86-cpu", description = "Device profile (default: ${DEFAULT-VALUE}).") String profile;
        @Option(names = "--force", description = "Install over an existing installation or for another architecture.") boolean force;

        @Override
        public Integer call() throws Exception {
            try {
                installer(key(pubkey)).install(bundle, profile, force);
                Path pinned = root.resolve("etc/enclave/bundle.pub");
                Files.createDirectories(pinned.getParent());
                if (!pinned.toAbsolutePath().equals(pubkey.toAbsolutePath())) Files.copy(pubkey, pinned, StandardCopyOption.REPLACE_EXISTING);
                return 0;
            } catch (BundleException | IllegalArgumentException e) {
                return fail(e.getMessage());
            }
        }
    }

    @Command(name = "upgrade", mixinStandardHelpOptions = true,
            description = "Verify and install a newer bundle, switch to it, check its health; roll back automatically if it fails.")
    public static class Upgrade extends RootOptions implements Callable<Integer> {
        @Parameters(paramLabel = "BUNDLE") Path bundle;
        @Option(names = "--pubkey", paramLabel = "FILE", description = "Default: the key pinned at install (ROOT/etc/enclave/bundle.pub).") Path pubkey;
        @Option(names = "--force", description = "Allow a downgrade or reinstalling the same version.") boolean force;

        @Override
        public Integer call() throws Exception {
            try {
                installer(key(pinnedKey(pubkey, root))).upgrade(bundle, force);
                return 0;
            } catch (BundleException e) {
                return fail(e.getMessage());
            }
        }
    }

    @Command(name = "rollback", mixinStandardHelpOptions = true, description = "Switch back to the previous release and its data.")
    public static class Rollback extends RootOptions implements Callable<Integer> {
        @Override
        public Integer call() throws Exception {
            try {
                System.out.println("rolled back to " + installer(null).rollback());
                return 0;
            } catch (BundleException e) {
                return fail(e.getMessage());
            }
        }
    }

    @Command(name = "uninstall", mixinStandardHelpOptions = true, description = "Remove the application (data kept unless --purge).")
    public static class Uninstall extends RootOptions implements Callable<Integer> {
        @Option(names = "--purge", description = "Also delete data, models, configuration and logs.") boolean purge;

        @Override
        public Integer call() throws Exception {
            installer(null).uninstall(purge);
            return 0;
        }
    }

    @Command(name = "verify", mixinStandardHelpOptions = true, description = "Check a bundle's signature and every file hash; install nothing.")
    public static class Verify extends RootOptions implements Callable<Integer> {
        @Parameters(paramLabel = "BUNDLE") Path bundle;
        @Option(names = "--pubkey", paramLabel = "FILE") Path pubkey;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            try {
                BundleInfo info = installer(key(pinnedKey(pubkey, root))).verify(bundle, false);
                System.out.println(json ? "{\"ok\":true,\"version\":" + Json.string(info.version()) + ",\"arch\":" + Json.string(info.arch()) + "}"
                        : "bundle " + bundle + ": signature and every file verified; Enclave " + info.version() + " for " + info.arch());
                return 0;
            } catch (BundleException e) {
                if (json) System.out.println("{\"ok\":false,\"reason\":" + Json.string(e.getMessage()) + "}");
                return fail(e.getMessage());
            }
        }
    }

    @Command(name = "status", mixinStandardHelpOptions = true, description = "Installed release, previous release, history.")
    public static class Status extends RootOptions implements Callable<Integer> {
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            Installer.Status s = installer(null).status();
            if (json) {
                StringBuilder sb = new StringBuilder("{\"current\":").append(s.current() == null ? "null" : Json.string(s.current()))
                        .append(",\"previous\":").append(s.previous() == null ? "null" : Json.string(s.previous()))
                        .append(",\"profile\":").append(s.profile() == null ? "null" : Json.string(s.profile())).append(",\"releases\":[");
                for (int i = 0; i < s.releases().size(); i++) sb.append(i > 0 ? "," : "").append(Json.string(s.releases().get(i)));
                sb.append("],\"history\":[");
                for (int i = 0; i < s.history().size(); i++) sb.append(i > 0 ? "," : "").append(Json.string(s.history().get(i)));
                System.out.println(sb.append("]}"));
            } else {
                System.out.println("current:  " + (s.current() == null ? "(not installed)" : s.current()));
                System.out.println("previous: " + (s.previous() == null ? "-" : s.previous()));
                System.out.println("profile:  " + (s.profile() == null ? "-" : s.profile()));
                System.out.println("releases: " + String.join(", ", s.releases()));
                s.history().forEach(h -> System.out.println("  " + h));
            }
            return s.current() == null ? 3 : 0;
        }
    }

    @Command(name = "import-model", mixinStandardHelpOptions = true, description = "Copy a model from removable media after verifying its SHA-256.")
    public static class ImportModel extends RootOptions implements Callable<Integer> {
        @Parameters(paramLabel = "FILE") Path file;
        @Option(names = "--sha256", required = true) String sha256;

        @Override
        public Integer call() throws Exception {
            try {
                System.out.println("imported " + installer(null).importModel(file, sha256));
                return 0;
            } catch (BundleException e) {
                return fail(e.getMessage());
            }
        }
    }

    @Command(name = "health", mixinStandardHelpOptions = true, description = "Wait until a server's /q/health/ready answers 200 (used by bundles' health checks).")
    public static class Health implements Callable<Integer> {
        @Option(names = "--url", required = true) String url;
        @Option(names = "--ca", paramLabel = "PEM", description = "CA certificate to trust for HTTPS (the appliance's local CA).") Path ca;
        @Option(names = "--wait", defaultValue = "30", description = "Seconds to keep trying (default: ${DEFAULT-VALUE}).") long wait;

        @Override
        public Integer call() throws Exception {
            HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2));
            if (ca != null) {
                KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
                ks.load(null, null);
                try (var in = Files.newInputStream(ca)) {
                    ks.setCertificateEntry("ca", java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in));
                }
                TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                tmf.init(ks);
                SSLContext ssl = SSLContext.getInstance("TLS");
                ssl.init(null, tmf.getTrustManagers(), null);
                b.sslContext(ssl);
            }
            HttpClient client = b.build();
            long deadline = System.nanoTime() + wait * 1_000_000_000L;
            String last = "";
            do {
                try {
                    HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(url.replaceAll("/$", "") + "/q/health/ready"))
                            .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                    if (r.statusCode() == 200) {
                        System.out.println("healthy: " + url);
                        return 0;
                    }
                    last = "HTTP " + r.statusCode();
                } catch (Exception e) {
                    last = e.getClass().getSimpleName();
                }
                Thread.sleep(500);
            } while (System.nanoTime() < deadline);
            return fail("not healthy after " + wait + " s (" + last + ")");
        }
    }

    @Command(name = "device", mixinStandardHelpOptions = true, description = "Device profiles: render system configuration, check the machine.",
            subcommands = {Render.class, Doctor.class})
    public static class Device implements Runnable {
        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            spec.commandLine().usage(System.out);
        }
    }

    @Command(name = "render", mixinStandardHelpOptions = true,
            description = "Render a profile: appliance configuration, systemd drop-in, nftables (egress dropped, HTTPS from the LAN only), sysctl, NPU environment.")
    public static class Render implements Callable<Integer> {
        @Option(names = "--profile", required = true, description = "One of: qcs6490, x86-cpu, x86-nvidia, x86-intel-gpu, arm64-generic.") String profile;
        @Option(names = "--out", required = true, paramLabel = "DIR") Path out;

        @Override
        public Integer call() throws Exception {
            try {
                for (String f : DeviceRenderer.render(DeviceProfile.builtIn(profile), DeviceProfile.rawBuiltIn(profile), out)) {
                    System.out.println(out.resolve(f));
                }
                return 0;
            } catch (IllegalArgumentException e) {
                return fail(e.getMessage());
            }
        }
    }

    @Command(name = "doctor", mixinStandardHelpOptions = true, description = "Check this machine against a profile: a pass/fail table.")
    public static class Doctor implements Callable<Integer> {
        @Option(names = "--profile", description = "Profile (default: /etc/enclave/profile, else x86-cpu or arm64-generic).") String profile;
        @Option(names = "--data-dir", defaultValue = "${env:ENCLAVE_DATA_DIR:-data}") Path dataDir;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            String name = profile;
            if (name == null && Files.isRegularFile(Path.of("/etc/enclave/profile"))) name = Files.readString(Path.of("/etc/enclave/profile")).trim();
            if (name == null) name = BundleInfo.hostArch().equals("aarch64") ? "arm64-generic" : "x86-cpu";
            List<DeviceDoctor.Check> checks;
            try {
                checks = new DeviceDoctor().run(DeviceProfile.builtIn(name), DeviceProfile.rawBuiltIn(name), dataDir.toAbsolutePath());
            } catch (IllegalArgumentException e) {
                return fail(e.getMessage());
            }
            // where a model's layers would run here under this profile's order
            List<String> order = DeviceProfile.builtIn(name).runtimeBackendOrder();
            dev.enclave.runtime.RuntimeOptions options = dev.enclave.runtime.RuntimeOptions.defaults().withBackendOrder(order);
            List<String> available = dev.enclave.runtime.backend.Backends.available(options).stream().map(dev.enclave.runtime.backend.Backend::name).toList();
            List<String> chosen = dev.enclave.runtime.backend.Backends.order(options).stream().map(dev.enclave.runtime.backend.Backend::name).toList();
            List<String> missing = order.stream().filter(b -> !available.contains(b)).toList();
            checks = new java.util.ArrayList<>(checks);
            checks.add(new DeviceDoctor.Check("inference backend", missing.isEmpty() ? DeviceDoctor.Result.PASS : DeviceDoctor.Result.WARN,
                    chosen.getFirst() + " (profile order " + String.join(", ", order) + "; available " + String.join(", ", available)
                            + (missing.isEmpty() ? "" : "; not here: " + String.join(", ", missing) + ", their layers run on the next") + ")"));
            boolean ok = checks.stream().noneMatch(c -> c.result() == DeviceDoctor.Result.FAIL);
            if (json) {
                StringBuilder sb = new StringBuilder("{\"profile\":" + Json.string(name) + ",\"ok\":" + ok + ",\"backend\":" + Json.string(chosen.getFirst())
                        + ",\"backend_order\":" + strings(order) + ",\"backends_available\":" + strings(available) + ",\"checks\":[");
                for (int i = 0; i < checks.size(); i++) {
                    DeviceDoctor.Check c = checks.get(i);
                    sb.append(i > 0 ? "," : "").append("{\"name\":").append(Json.string(c.name())).append(",\"result\":")
                            .append(Json.string(c.result().name().toLowerCase())).append(",\"detail\":").append(Json.string(c.detail())).append('}');
                }
                System.out.println(sb.append("]}"));
            } else {
                System.out.printf("device doctor, profile %s%n", name);
                for (DeviceDoctor.Check c : checks) System.out.printf("  %-4s  %-28s %s%n", c.result(), c.name(), c.detail());
            }
            return ok ? 0 : 1;
        }

        private static String strings(List<String> values) {
            return "[" + String.join(",", values.stream().map(Json::string).toList()) + "]";
        }
    }
}
