package dev.enclave.server.security;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/**
 * Argon2id password hashes in the PHC string format ({@code $argon2id$v=19$m=19456,t=2,p=1$salt$hash}), with
 * OWASP's minimum parameters (19 MiB, 2 passes): memory-hard, so a stolen database is expensive to attack on GPUs.
 * Parameters are read back from the stored string, so they can be raised later without invalidating old hashes.
 */
public final class PasswordHasher {

    private static final int MEMORY_KIB = 19 * 1024;
    private static final int ITERATIONS = 2;
    private static final int PARALLELISM = 1;
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Base64.Encoder B64 = Base64.getEncoder().withoutPadding();
    private static final Base64.Decoder B64D = Base64.getDecoder();

    /**
     * A hash in this class's format and at its cost that is no password's (all-zero salt and value), to verify an
     * unknown user's login against at a known user's cost. Written out rather than computed: hashing at class
     * initialization ran Argon2 cold, on the thread that starts the server.
     */
    public static final String TIMING_DUMMY = "$argon2id$v=19$m=" + MEMORY_KIB + ",t=" + ITERATIONS + ",p=" + PARALLELISM
            + "$" + B64.encodeToString(new byte[16]) + "$" + B64.encodeToString(new byte[32]);

    private PasswordHasher() {
    }

    public static String hash(String password) {
        byte[] salt = new byte[16];
        RANDOM.nextBytes(salt);
        byte[] h = argon2(password, salt, MEMORY_KIB, ITERATIONS, PARALLELISM, 32);
        return "$argon2id$v=19$m=" + MEMORY_KIB + ",t=" + ITERATIONS + ",p=" + PARALLELISM + "$"
                + B64.encodeToString(salt) + "$" + B64.encodeToString(h);
    }

    public static boolean verify(String password, String encoded) {
        if (encoded == null || !encoded.startsWith("$argon2id$")) return false;
        String[] parts = encoded.split("\\$");
        // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
        if (parts.length != 6) return false;
        int m = 0, t = 0, p = 0;
        for (String kv : parts[3].split(",")) {
            String[] x = kv.split("=");
            if (x.length != 2) return false;
            int v = Integer.parseInt(x[1]);
            switch (x[0]) {
                case "m" -> m = v;
                case "t" -> t = v;
                case "p" -> p = v;
                default -> { return false; }
            }
        }
        byte[] salt = B64D.decode(parts[4]);
        byte[] expected = B64D.decode(parts[5]);
        byte[] actual = argon2(password, salt, m, t, p, expected.length);
        return MessageDigest.isEqual(expected, actual);
    }

    private static byte[] argon2(String password, byte[] salt, int memoryKib, int iterations, int parallelism, int len) {
        Argon2Parameters params = new Argon2Parameters.Builder(Argon2Parameters.ARGON2_id)
                .withVersion(Argon2Parameters.ARGON2_VERSION_13)
                .withMemoryAsKB(memoryKib).withIterations(iterations).withParallelism(parallelism)
                .withSalt(salt).build();
        Argon2BytesGenerator gen = new Argon2BytesGenerator();
        gen.init(params);
        byte[] out = new byte[len];
        gen.generateBytes(password.getBytes(StandardCharsets.UTF_8), out);
        return out;
    }
}
