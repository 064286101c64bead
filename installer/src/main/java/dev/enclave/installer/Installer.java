package dev.enclave.installer;

import dev.enclave.device.DeviceProfile;
import java.io.IOException;
import java.io.InputStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Installs, upgrades, rolls back and removes the appliance under a root directory ({@code /} on a real box, a
 * temporary directory in tests — everything takes it). Layout:
 * <pre>
 * ROOT/opt/enclave/releases/VERSION/      one directory per installed bundle (never modified after extraction and
 *                                         its start-up cache, app/app.aot, made right after)
 * ROOT/opt/enclave/current -> releases/V  switched atomically (symlink + rename)
 * ROOT/etc/enclave/application.properties configuration (kept across upgrades)
 * ROOT/etc/systemd/system/enclave.service hardened unit, limits from the device profile
 * ROOT/var/lib/enclave/{data,models,backups}, ROOT/var/log/enclave   mode 750
 * ROOT/var/lib/enclave/install.properties current, previous, history
 * </pre>
 * Every bundle is verified against the pinned key before anything is written.
 */
public final class Installer {

    public record Status(String current, String previous, List<String> releases, String profile, List<String> history) {
    }

    private final Path root;
    private final PublicKey pinned;
    private final Consumer<String> log;
    private final long healthTimeoutSeconds;

    public Installer(Path root, PublicKey pinned, Consumer<String> log, long healthTimeoutSeconds) {
        this.root = root.toAbsolutePath().normalize();
        this.pinned = pinned;
        this.log = log;
        this.healthTimeoutSeconds = healthTimeoutSeconds;
    }

    Path opt() {
        return root.resolve("opt/enclave");
    }

    Path releases() {
        return opt().resolve("releases");
    }

    Path current() {
        return opt().resolve("current");
    }

    Path varLib() {
        return root.resolve("var/lib/enclave");
    }

    Path stateFile() {
        return varLib().resolve("install.properties");
    }

    // ---- operations

    public BundleInfo verify(Path bundle, boolean force) throws BundleException {
        BundleArchive.Verified v = BundleArchive.verify(bundle, pinned);
        checkArch(v.info(), force);
        return v.info();
    }

    public String install(Path bundle, String profileName, boolean force) throws BundleException, IOException {
        BundleArchive.Verified v = BundleArchive.verify(bundle, pinned);
        checkArch(v.info(), force);
        Properties state = state();
        if (state.getProperty("current") != null && !force) {
            throw new BundleException("Enclave " + state.getProperty("current") + " is already installed; use upgrade");
        }
        DeviceProfile profile = DeviceProfile.builtIn(profileName);
        String version = v.info().version();
        extractRelease(bundle, v);
        makeStartupCache(version);
        layout(profile);
        // configuration: the bundle's defaults, only where the operator has none yet
        Path conf = root.resolve("etc/enclave/application.properties");
        Path bundled = releases().resolve(version).resolve("config/application.properties");
        if (!Files.exists(conf) && Files.exists(bundled)) Files.copy(bundled, conf);
        Files.writeString(root.resolve("etc/enclave/profile"), profile.name() + "\n");
        Files.writeString(root.resolve("etc/systemd/system/enclave.service"), SystemdUnit.render(profile));
        switchTo(version);
        state.setProperty("current", version);
        state.remove("previous");
        history(state, "install " + version);
        saveState(state);
        log.accept("installed Enclave " + version + " (profile " + profile.name() + ") under " + root);
        return version;
    }

    public String upgrade(Path bundle, boolean force) throws BundleException, IOException {
        BundleArchive.Verified v = BundleArchive.verify(bundle, pinned);
        checkArch(v.info(), force);
        Properties state = state();
        String from = state.getProperty("current");
        if (from == null) throw new BundleException("nothing installed under " + root + "; use install");
        String to = v.info().version();
        int cmp = BundleInfo.compare(to, from);
        if (cmp == 0 && !force) throw new BundleException("Enclave " + to + " is already the installed version");
        if (cmp < 0 && !force) throw new BundleException("refusing to downgrade from " + from + " to " + to + " (use --force)");
        if (!Files.isDirectory(releases().resolve(to))) {
            extractRelease(bundle, v);
            makeStartupCache(to);
        }
        String earlier = state.getProperty("previous");
        Path backup = backupData(from);
        switchTo(to);
        state.setProperty("previous", from);
        state.setProperty("current", to);
        state.setProperty("backup." + to, backup.toString());
        history(state, "upgrade " + from + " -> " + to);
        saveState(state);
        log.accept("switched to " + to + "; checking its health");
        if (!healthy(to)) {
            log.accept("Enclave " + to + " failed its health check: rolling back to " + from);
            rollback();
            if (earlier != null) {
                // the failed attempt leaves no trace in the chain: one can still step back from `from` to `earlier`
                Properties after = state();
                after.setProperty("previous", earlier);
                saveState(after);
            }
            throw new BundleException("upgrade to " + to + " failed its health check; rolled back to " + from);
        }
        log.accept("upgraded Enclave " + from + " -> " + to);
        return to;
    }

    /** Switches back to the previous release and restores the data backup taken when leaving it. */
    public String rollback() throws BundleException, IOException {
        Properties state = state();
        String cur = state.getProperty("current");
        String prev = state.getProperty("previous");
        if (prev == null || !Files.isDirectory(releases().resolve(prev))) throw new BundleException("no previous release to roll back to");
        String backup = state.getProperty("backup." + cur);
        switchTo(prev);
        if (backup != null && Files.isDirectory(Path.of(backup))) {
            Path data = varLib().resolve("data");
            Path aside = varLib().resolve("data.failed-" + cur + "-" + System.currentTimeMillis());
            if (Files.exists(data)) Files.move(data, aside);
            copyTree(Path.of(backup), data);
            log.accept("data restored from " + backup + " (the newer release's data kept in " + aside.getFileName() + ")");
        }
        state.setProperty("current", prev);
        state.remove("previous");
        history(state, "rollback " + cur + " -> " + prev);
        saveState(state);
        return prev;
    }

    public void uninstall(boolean purge) throws IOException {
        Files.deleteIfExists(root.resolve("etc/systemd/system/enclave.service"));
        Files.deleteIfExists(current());
        BundleArchive.deleteTree(opt());
        if (purge) {
            BundleArchive.deleteTree(varLib());
            BundleArchive.deleteTree(root.resolve("etc/enclave"));
            BundleArchive.deleteTree(root.resolve("var/log/enclave"));
        } else {
            Properties s = state();
            s.remove("current");
            s.remove("previous");
            history(s, "uninstall (data kept)");
            saveState(s);
        }
        log.accept("uninstalled" + (purge ? " and purged data" : "; data kept under " + varLib()));
    }

    public Status status() throws IOException {
        Properties s = state();
        List<String> rel = new ArrayList<>();
        if (Files.isDirectory(releases())) {
            try (Stream<Path> st = Files.list(releases())) {
                st.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")).sorted(BundleInfo::compare).forEach(rel::add);
            }
        }
        String profile = Files.exists(root.resolve("etc/enclave/profile"))
                ? Files.readString(root.resolve("etc/enclave/profile")).trim() : null;
        List<String> hist = new ArrayList<>();
        for (int i = 1; s.getProperty("history." + i) != null; i++) hist.add(s.getProperty("history." + i));
        return new Status(s.getProperty("current"), s.getProperty("previous"), rel, profile, hist);
    }

    /** Copies a model from removable media into the models directory after checking its SHA-256. */
    public Path importModel(Path file, String sha256) throws BundleException, IOException {
        if (!sha256.matches("[0-9a-fA-F]{64}")) throw new BundleException("--sha256 must be 64 hex digits");
        String got = sha256(file);
        if (!got.equalsIgnoreCase(sha256)) throw new BundleException("SHA-256 of " + file + " is " + got + ", not " + sha256);
        Path models = varLib().resolve("models");
        Files.createDirectories(models);
        Path tmp = models.resolve(file.getFileName() + ".part");
        Files.copy(file, tmp, StandardCopyOption.REPLACE_EXISTING);
        if (!sha256(tmp).equalsIgnoreCase(sha256)) {
            Files.delete(tmp);
            throw new BundleException("the copy does not match: the medium may be failing");
        }
        Path target = models.resolve(file.getFileName());
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return target;
    }

    // ---- steps

    private void checkArch(BundleInfo info, boolean force) throws BundleException {
        String host = BundleInfo.hostArch();
        if (!info.arch().equals("any") && !info.arch().equals(host) && !force) {
            throw new BundleException("bundle is for " + info.arch() + ", this machine is " + host);
        }
    }

    private void extractRelease(Path bundle, BundleArchive.Verified v) throws BundleException, IOException {
        Files.createDirectories(releases());
        Path target = releases().resolve(v.info().version());
        if (Files.exists(target)) BundleArchive.deleteTree(target);
        Path staging = releases().resolve(".staging-" + v.info().version() + "-" + System.nanoTime());
        BundleArchive.extract(bundle, v, staging);
        Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
    }

    /** How long a start-up cache's training run may take before it is given up. */
    private static final long STARTUP_CACHE_SECONDS = 300;

    /**
     * Makes the release's JDK AOT cache ({@code app/app.aot}; JEP 483/514/515: classes loaded and linked ahead, method
     * profiles) by its own launcher's training run ({@code serve --startup-training}), as {@code ./enclave} makes one per
     * build. A cache holds only for the Java that made it and the paths it was made at, so it is made here, on the
     * target, by the release's runtime; bundles never carry one. Best effort: without it the release starts as before.
     */
    private void makeStartupCache(String version) {
        Path release = releases().resolve(version);
        Path launcher = release.resolve("bin/enclave");
        if (!Files.isRegularFile(launcher) || !Files.isRegularFile(release.resolve("app/quarkus-run.jar"))) return;
        Path cache = release.resolve("app").resolve(BundleBuilder.STARTUP_CACHE);
        Path tmp = cache.resolveSibling(BundleBuilder.STARTUP_CACHE + ".tmp");
        Path work = null;
        long t0 = System.nanoTime();
        try {
            work = Files.createTempDirectory("enclave-aot-");
            Files.deleteIfExists(tmp);
            Path out = work.resolve("training.log");
            // the bundled model served on a free loopback port from a data directory of its own, one request of each kind
            ProcessBuilder pb = new ProcessBuilder("sh", launcher.toString(), "serve", "--startup-training")
                    .directory(work.toFile()).redirectErrorStream(true).redirectOutput(out.toFile());
            pb.environment().put("ENCLAVE_AOT_OUTPUT", tmp.toString());
            pb.environment().remove("ENCLAVE_JAVA_OPTS");
            Process p = pb.start();
            if (!p.waitFor(STARTUP_CACHE_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                log.accept("no start-up cache for " + version + ": its training run took over " + STARTUP_CACHE_SECONDS + " s");
                return;
            }
            if (p.exitValue() != 0 || !Files.isRegularFile(tmp) || Files.size(tmp) == 0) {
                List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
                String last = lines.stream().filter(l -> !l.isBlank()).reduce((a, b) -> b).orElse("no output");
                log.accept("no start-up cache for " + version + ": its training run failed (exit " + p.exitValue() + "): "
                        + (last.length() > 300 ? last.substring(0, 300) : last));
                return;
            }
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--")); // the service's user reads it
            Files.move(tmp, cache, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            log.accept(String.format("start-up cache made for %s (%d MB, %.1f s)", version, Files.size(cache) >> 20,
                    (System.nanoTime() - t0) / 1e9));
        } catch (IOException e) {
            log.accept("no start-up cache for " + version + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            try {
                Files.deleteIfExists(tmp);
                // the JVM's own intermediate file, left when the run was stopped before it could remove it
                Files.deleteIfExists(tmp.resolveSibling(tmp.getFileName() + ".config"));
                if (work != null) BundleArchive.deleteTree(work);
            } catch (IOException ignored) {
                // a temporary directory left behind is all
            }
        }
    }

    private void layout(DeviceProfile profile) throws IOException {
        for (String d : List.of("etc/enclave", "etc/systemd/system")) Files.createDirectories(root.resolve(d));
        for (String d : List.of("var/lib/enclave", "var/lib/enclave/data", "var/lib/enclave/models", "var/lib/enclave/backups",
                "var/log/enclave")) {
            Path p = root.resolve(d);
            Files.createDirectories(p);
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-x---"));
        }
        if (root.toString().equals("/")) createServiceUser();
    }

    /** On a real root: a system user with no login shell and no home of its own. */
    private void createServiceUser() throws IOException {
        try {
            Process id = new ProcessBuilder("id", "-u", "enclave").start();
            if (id.waitFor(10, TimeUnit.SECONDS) && id.exitValue() == 0) return;
            Process add = new ProcessBuilder("useradd", "--system", "--no-create-home", "--home-dir", "/var/lib/enclave",
                    "--shell", "/usr/sbin/nologin", "enclave").inheritIO().start();
            if (!add.waitFor(30, TimeUnit.SECONDS) || add.exitValue() != 0) throw new IOException("useradd enclave failed");
            for (String d : List.of("/var/lib/enclave", "/var/log/enclave")) {
                new ProcessBuilder("chown", "-R", "enclave:enclave", d).inheritIO().start().waitFor(30, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    /** Points {@code current} at a release: a new symlink renamed over the old one, so there is no moment without one. */
    private void switchTo(String version) throws IOException {
        Path tmp = opt().resolve(".current-" + System.nanoTime());
        try {
            Files.createSymbolicLink(tmp, Path.of("releases", version));
        } catch (FileAlreadyExistsException e) {
            Files.delete(tmp);
            Files.createSymbolicLink(tmp, Path.of("releases", version));
        }
        Files.move(tmp, current(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private Path backupData(String version) throws IOException {
        Path data = varLib().resolve("data");
        Path backup = varLib().resolve("backups").resolve(version + "-" + Instant.now().toEpochMilli());
        if (Files.exists(data)) copyTree(data, backup);
        else Files.createDirectories(backup);
        log.accept("data backed up to " + backup);
        return backup;
    }

    /** Runs the release's own {@code bin/healthcheck} with ENCLAVE_ROOT set; healthy when it exits 0 in time. */
    private boolean healthy(String version) throws IOException {
        Path script = releases().resolve(version).resolve("bin/healthcheck");
        if (!Files.isRegularFile(script)) {
            log.accept("release " + version + " has no bin/healthcheck: treated as unhealthy");
            return false;
        }
        Path logFile = root.resolve("var/log/enclave/healthcheck-" + version + ".log");
        Files.createDirectories(logFile.getParent());
        ProcessBuilder pb = new ProcessBuilder("sh", script.toString()).redirectErrorStream(true)
                .redirectOutput(logFile.toFile()); // a file, not a pipe: a chatty check can never block on a full pipe
        pb.environment().put("ENCLAVE_ROOT", root.toString());
        pb.environment().put("ENCLAVE_RELEASE", releases().resolve(version).toString());
        Process p = pb.start();
        try {
            boolean done = p.waitFor(healthTimeoutSeconds, TimeUnit.SECONDS);
            if (!done) {
                p.destroyForcibly();
                log.accept("health check timed out after " + healthTimeoutSeconds + " s");
                return false;
            }
            String out = Files.readString(logFile, StandardCharsets.UTF_8).strip();
            if (!out.isEmpty()) log.accept("health check: " + (out.length() > 2000 ? out.substring(out.length() - 2000) : out));
            return p.exitValue() == 0;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    // ---- state

    Properties state() throws IOException {
        Properties p = new Properties();
        if (Files.exists(stateFile())) p.load(new StringReader(Files.readString(stateFile())));
        return p;
    }

    private void saveState(Properties p) throws IOException {
        Files.createDirectories(stateFile().getParent());
        StringBuilder sb = new StringBuilder("# written by the Enclave installer\n");
        p.stringPropertyNames().stream().sorted().forEach(k -> sb.append(k).append('=').append(p.getProperty(k).replace("\\", "\\\\")).append('\n'));
        Path tmp = stateFile().resolveSibling("install.properties.tmp");
        Files.writeString(tmp, sb);
        Files.move(tmp, stateFile(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void history(Properties p, String line) {
        int i = 1;
        while (p.getProperty("history." + i) != null) i++;
        p.setProperty("history." + i, Instant.now() + " " + line);
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path t = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) Files.createDirectories(t);
                else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) Files.copy(p, t, StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
    }

    static String sha256(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
