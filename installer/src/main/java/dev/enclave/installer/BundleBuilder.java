package dev.enclave.installer;

import dev.enclave.device.DeviceProfile;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.util.ArrayList;
import java.util.List;
import java.util.spi.ToolProvider;

/**
 * Assembles a bundle: the application directory (Quarkus fast-jar), optionally a jlink'ed Java runtime so the
 * target needs no Java, the chosen models, default configuration, the device profiles, the SBOM, launch and
 * health-check scripts and {@code install.sh}; then signs and tars it ({@link BundleArchive#create}).
 */
public final class BundleBuilder {

    /** Modules the application needs (Quarkus, Vert.x, Lucene, SQLite, PDFBox/AWT fonts, ONNX, the Vector API). */
    public static final List<String> RUNTIME_MODULES = List.of("java.base", "java.compiler", "java.desktop", "java.instrument",
            "java.logging", "java.management", "java.naming", "java.net.http", "java.security.jgss", "java.sql",
            "java.transaction.xa", "java.xml", "jdk.crypto.cryptoki", "jdk.incubator.vector", "jdk.management",
            "jdk.net", "jdk.unsupported", "jdk.zipfs", "jdk.localedata", "jdk.jfr");

    /** The release's JDK AOT cache, under {@code app/}: made by {@link Installer} on the target, never bundled. */
    static final String STARTUP_CACHE = "app.aot";

    private final Path appDir;
    private final String version;
    private final String arch;
    private final List<Path> models = new ArrayList<>();
    private Path config;
    private Path sbom;
    private boolean jlink;
    private String healthcheck = defaultHealthcheck();

    public BundleBuilder(Path appDir, String version, String arch) {
        this.appDir = appDir;
        this.version = version;
        this.arch = arch;
    }

    public BundleBuilder model(Path m) {
        models.add(m);
        return this;
    }

    public BundleBuilder config(Path c) {
        this.config = c;
        return this;
    }

    public BundleBuilder sbom(Path s) {
        this.sbom = s;
        return this;
    }

    public BundleBuilder jlink(boolean j) {
        this.jlink = j;
        return this;
    }

    /** Replaces the health-check script (tests use this to force a failed upgrade). */
    public BundleBuilder healthcheck(String script) {
        this.healthcheck = script;
        return this;
    }

    public void build(PrivateKey key, Path out) throws IOException, GeneralSecurityException, BundleException {
        Path stage = Files.createTempDirectory("enclave-bundle-");
        try {
            Installer.copyTree(appDir, stage.resolve("app"));
            // a JDK AOT cache holds only for the Java and the paths that made it: the installer makes the release's own
            try (var left = Files.list(stage.resolve("app"))) {
                for (Path p : left.filter(p -> p.getFileName().toString().startsWith(STARTUP_CACHE)).toList()) Files.delete(p);
            }
            if (jlink) jlinkRuntime(stage.resolve("runtime"));
            Files.createDirectories(stage.resolve("models"));
            for (Path m : models) Files.copy(m, stage.resolve("models").resolve(m.getFileName()));
            Files.createDirectories(stage.resolve("config"));
            if (config != null) Files.copy(config, stage.resolve("config/application.properties"));
            else Files.writeString(stage.resolve("config/application.properties"), defaultConfig());
            Files.createDirectories(stage.resolve("profiles"));
            for (String p : DeviceProfile.BUILT_IN) {
                try (InputStream in = DeviceProfile.class.getClassLoader().getResourceAsStream("profiles/" + p + ".properties")) {
                    if (in != null) Files.copy(in, stage.resolve("profiles/" + p + ".properties"));
                }
            }
            if (sbom != null) Files.copy(sbom, stage.resolve("sbom.cdx.json"));
            Files.createDirectories(stage.resolve("bin"));
            script(stage.resolve("bin/enclave"), launcher());
            script(stage.resolve("bin/healthcheck"), healthcheck);
            script(stage.resolve("install.sh"), installSh());
            Files.writeString(stage.resolve(BundleInfo.FILE),
                    new BundleInfo(version, arch, System.currentTimeMillis(), jlink ? "jlink" : "system").toProperties());
            BundleArchive.create(stage, key, out);
        } finally {
            BundleArchive.deleteTree(stage);
        }
    }

    private static void jlinkRuntime(Path out) throws BundleException {
        ToolProvider jl = ToolProvider.findFirst("jlink").orElseThrow(() -> new BundleException("this JDK has no jlink"));
        StringWriter log = new StringWriter();
        int rc = jl.run(new PrintWriter(log), new PrintWriter(log), "--add-modules", String.join(",", RUNTIME_MODULES),
                "--strip-debug", "--no-header-files", "--no-man-pages", "--compress", "zip-6", "--output", out.toString());
        if (rc != 0) throw new BundleException("jlink failed: " + log);
        // jlink links some legal notices to java.base's copies; bundles carry no links, so copy them in place
        try (var files = Files.walk(out)) {
            for (Path p : files.filter(Files::isSymbolicLink).toList()) {
                Path target = p.toRealPath();
                Files.delete(p);
                Files.copy(target, p);
            }
        } catch (IOException e) {
            throw new BundleException("cannot resolve links in the jlink'ed runtime: " + e.getMessage(), e);
        }
    }

    private static void script(Path p, String text) throws IOException {
        Files.writeString(p, text, StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    static String launcher() {
        return """
                #!/bin/sh
                # Runs the bundled application with the bundled Java runtime (or the system's Java 25 when there is none).
                # The release's own directory, links resolved: the start-up cache was made for these paths.
                HERE="$(cd -P "$(dirname "$0")/.." && pwd -P)"
                if [ -x "$HERE/runtime/bin/java" ]; then JAVA="$HERE/runtime/bin/java"; else JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"; fi
                # -Xmn32m: warm-up garbage would otherwise leave a large young generation resident; native heap
                # trimming gives back the memory C2 used to compile the kernels; C2 compiles them without profiled
                # loop predicates, for time to first token (see ./enclave), on the JDK that was measured (25) only
                JIT_OPTS=""
                RELEASE="$(dirname "$(dirname "$JAVA")")/release"
                if grep -q '^JAVA_VERSION="25[."]' "$RELEASE" 2>/dev/null; then JIT_OPTS="-XX:-UseProfiledLoopPredicate"; fi
                # the JDK AOT cache the installer made for this release (classes loaded and linked ahead, method profiles):
                # used when present, ENCLAVE_AOT=0 runs without it; ENCLAVE_AOT_OUTPUT=FILE records one (the installer's run)
                AOT=""
                if [ -n "${ENCLAVE_AOT_OUTPUT:-}" ]; then AOT="-XX:AOTCacheOutput=$ENCLAVE_AOT_OUTPUT"
                elif [ "${ENCLAVE_AOT:-1}" = 1 ] && [ -f "$HERE/app/app.aot" ]; then AOT="-XX:AOTCache=$HERE/app/app.aot"; fi
                exec "$JAVA" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xmn32m -XX:TrimNativeHeapInterval=2000 \\
                  $JIT_OPTS ${AOT:+-Xlog:aot=off -Xlog:cds=off "$AOT"} ${ENCLAVE_JAVA_OPTS:-} \\
                  -jar "$HERE/app/quarkus-run.jar" "$@"
                """;
    }

    static String defaultHealthcheck() {
        return """
                #!/bin/sh
                # Run by the installer right after it switched to this release: exit 0 = healthy, else it rolls back.
                ROOT="${ENCLAVE_ROOT:-/}"
                HERE="$(cd "$(dirname "$0")/.." && pwd)"
                if [ "$ROOT" = "/" ] && command -v systemctl >/dev/null 2>&1; then
                  systemctl daemon-reload && systemctl restart enclave.service || exit 1
                  exec "$HERE/bin/enclave" health --url https://127.0.0.1:8443 --ca /var/lib/enclave/data/tls/ca.pem --wait 120
                fi
                # a staging root (tests, dry runs): start this release on a loopback port against the root's data, probe, stop
                PORT="${ENCLAVE_HEALTH_PORT:-18443}"
                mkdir -p "$ROOT/var/log/enclave"
                "$HERE/bin/enclave" serve --port "$PORT" --data-dir "$ROOT/var/lib/enclave/data" > "$ROOT/var/log/enclave/health.log" 2>&1 &
                PID=$!
                "$HERE/bin/enclave" health --url "http://127.0.0.1:$PORT" --wait 120
                RC=$?
                kill "$PID" 2>/dev/null
                wait "$PID" 2>/dev/null
                exit $RC
                """;
    }

    static String installSh() {
        return """
                #!/bin/sh
                # Install or upgrade from this bundle with nothing but coreutils and tar:
                #   tar -xf enclave-VERSION.tar install.sh && sh install.sh enclave-VERSION.tar /etc/enclave/bundle.pub [install|upgrade] [--profile NAME]
                # The bundle is unpacked to a temporary directory, its file hashes checked with sha256sum, then the bundled
                # installer (bundled Java runtime) checks the Ed25519 signature against the pinned key and does the rest.
                set -eu
                BUNDLE="$1"; KEY="$2"; OP="${3:-install}"; shift 3 2>/dev/null || shift $#
                TMP="$(mktemp -d)"
                trap 'rm -rf "$TMP"' EXIT
                tar -xf "$BUNDLE" -C "$TMP"
                (cd "$TMP" && sha256sum --quiet --strict -c MANIFEST.sha256)
                "$TMP/bin/enclave" "$OP" "$BUNDLE" --pubkey "$KEY" --root "${ENCLAVE_ROOT:-/}" "$@"
                """;
    }

    static String defaultConfig() {
        return """
                # Enclave appliance configuration (installed to /etc/enclave/application.properties; kept across upgrades).
                enclave.data-dir=/var/lib/enclave/data
                enclave.models-dir=/var/lib/enclave/models
                enclave.auth.enabled=true
                enclave.audit.log-prompts=false
                """;
    }
}
