package dev.enclave.server.panel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** SHA-256 of model files, computed once per (path, size, mtime): hashing a 4 GB model on every page view would hurt. */
final class Sha256Cache {

    private record Key(Path path, long size, long mtime) {
    }

    private static final Map<Key, String> CACHE = new ConcurrentHashMap<>();

    private Sha256Cache() {
    }

    static String of(Path p) {
        try {
            Key k = new Key(p.toAbsolutePath(), Files.size(p), Files.getLastModifiedTime(p).toMillis());
            return CACHE.computeIfAbsent(k, key -> {
                try {
                    return PanelRoutes.sha256(key.path());
                } catch (Exception e) {
                    return "unreadable";
                }
            });
        } catch (Exception e) {
            return "unreadable";
        }
    }
}
