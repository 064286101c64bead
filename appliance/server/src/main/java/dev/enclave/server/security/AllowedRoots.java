package dev.enclave.server.security;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where the appliance may read files on a technician's say-so (folder crawls, model imports): only below the roots
 * the operator configured, never in or above its own data directory (keys, databases, the index), judged on the
 * resolved real path so that a symbolic link or {@code ..} cannot step outside. No roots: nothing may be read.
 */
public final class AllowedRoots {

    /** A path the appliance refuses to read from. */
    public static final class NotAllowed extends IllegalArgumentException {
        public NotAllowed(String message) {
            super(message);
        }
    }

    private final List<Path> roots;
    private final Path dataDir;
    private final String setting;

    /** @param setting the configuration key, named in the refusal when no root is set */
    public AllowedRoots(List<String> roots, Path dataDir, String setting) {
        List<Path> r = new ArrayList<>();
        for (String s : roots) if (!s.isBlank()) r.add(Path.of(s.strip()).toAbsolutePath().normalize());
        this.roots = List.copyOf(r);
        this.dataDir = dataDir.toAbsolutePath().normalize();
        this.setting = setting;
    }

    public boolean enabled() {
        return !roots.isEmpty();
    }

    /** The real path of {@code path} when it may be read; a directory when {@code directory}, else a regular file. */
    public Path check(String path, boolean directory) {
        if (roots.isEmpty()) throw new NotAllowed("reading local folders is switched off: the operator sets " + setting);
        Path real;
        try {
            real = Path.of(path).toRealPath();
        } catch (IOException | java.nio.file.InvalidPathException e) {
            throw new NotAllowed((directory ? "not a directory: " : "no such file: ") + path);
        }
        if (directory ? !Files.isDirectory(real) : !Files.isRegularFile(real)) {
            throw new NotAllowed((directory ? "not a directory: " : "not a regular file: ") + path);
        }
        Path data = realOrSelf(dataDir);
        if (real.startsWith(data) || data.startsWith(real)) {
            throw new NotAllowed("the appliance's own data directory cannot be read this way: " + path);
        }
        for (Path root : roots) {
            if (real.startsWith(realOrSelf(root))) return real;
        }
        throw new NotAllowed(path + " is not below an allowed folder (" + setting + ")");
    }

    private static Path realOrSelf(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p;
        }
    }
}
