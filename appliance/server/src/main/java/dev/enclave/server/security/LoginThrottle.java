package dev.enclave.server.security;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Failed sign-ins counted per (user name, client address), known names and unknown alike: after
 * {@link #FREE_FAILURES} failures that pair is locked for a minute, doubling with each further failure up to an
 * hour. Why per pair: a lock per account lets anyone keep {@code admin} locked out forever from anywhere, and a
 * lock only for real accounts tells which names exist. Recovery: a successful sign-in from the address, an admin's
 * unlock or password reset, or a restart (the counts live in memory).
 */
public final class LoginThrottle {

    public static final int FREE_FAILURES = 5;
    static final long FIRST_LOCK_MILLIS = 60_000L;
    static final long MAX_LOCK_MILLIS = 3_600_000L;
    private static final int MAX_ENTRIES = 50_000;

    private static final class Count {
        int failures;
        long lockedUntil;
        long last;
    }

    private final Map<String, Count> counts = new ConcurrentHashMap<>();

    private static String key(String user, String ip) {
        return (user == null ? "" : user.strip().toLowerCase(Locale.ROOT)) + "\u0000" + (ip == null ? "" : ip);
    }

    /** Milliseconds this (user, address) pair stays locked, or 0. */
    public long lockedFor(String user, String ip, long now) {
        Count c = counts.get(key(user, ip));
        if (c == null) return 0;
        synchronized (c) {
            return Math.max(0, c.lockedUntil - now);
        }
    }

    /** Records a failure; returns how long the pair is now locked (0: not yet). */
    public long failure(String user, String ip, long now) {
        if (counts.size() > MAX_ENTRIES) counts.values().removeIf(c -> now - c.last > MAX_LOCK_MILLIS && now > c.lockedUntil);
        Count c = counts.computeIfAbsent(key(user, ip), k -> new Count());
        synchronized (c) {
            c.failures++;
            c.last = now;
            if (c.failures < FREE_FAILURES) return 0;
            int over = Math.min(c.failures - FREE_FAILURES, 10);
            long lock = Math.min(MAX_LOCK_MILLIS, FIRST_LOCK_MILLIS << over);
            c.lockedUntil = now + lock;
            return lock;
        }
    }

    public void success(String user, String ip) {
        counts.remove(key(user, ip));
    }

    /** Clears every address's count for {@code user} (an admin's unlock, a password reset). */
    public void unlock(String user) {
        String prefix = key(user, "");
        counts.keySet().removeIf(k -> k.startsWith(prefix));
    }
}
