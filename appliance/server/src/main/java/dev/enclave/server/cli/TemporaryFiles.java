package dev.enclave.server.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** A command's temporary directories, removed when it is done. */
final class TemporaryFiles {

    private TemporaryFiles() {
    }

    /** Deletes {@code dir} and everything under it, best effort: a temporary directory left behind is all that can go wrong. */
    static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
        } catch (IOException | UncheckedIOException e) {
            // best effort
        }
    }
}
