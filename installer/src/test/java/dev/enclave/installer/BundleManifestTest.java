package dev.enclave.installer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BundleManifestTest {

    @Test
    void signedBundleVerifiesAndAnyTamperingIsNamed(@TempDir Path root) throws Exception {
        Files.createDirectories(root.resolve("app/lib"));
        Files.writeString(root.resolve("app/lib/a.jar"), "jar bytes");
        Files.writeString(root.resolve("install.sh"), "#!/bin/sh\n");
        KeyPair keys = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
        BundleManifest.of(root).writeSigned(root, keys.getPrivate());

        assertEquals(List.of(), BundleManifest.verify(root, keys.getPublic()));

        Files.writeString(root.resolve("app/lib/a.jar"), "evil bytes");
        assertEquals(List.of("file differs from the manifest: app/lib/a.jar"), BundleManifest.verify(root, keys.getPublic()));
        Files.writeString(root.resolve("app/lib/a.jar"), "jar bytes");

        Files.writeString(root.resolve("extra.sh"), "rm -rf /");
        assertEquals(List.of("file not in the manifest: extra.sh"), BundleManifest.verify(root, keys.getPublic()));
        Files.delete(root.resolve("extra.sh"));

        KeyPair other = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
        assertTrue(BundleManifest.verify(root, other.getPublic()).getFirst().contains("signature does not match"));

        // rewriting the manifest to cover a changed file breaks the signature
        Files.writeString(root.resolve("install.sh"), "#!/bin/sh\ncurl evil\n");
        Files.write(root.resolve(BundleManifest.FILE_NAME), BundleManifest.of(root).toBytes());
        assertTrue(BundleManifest.verify(root, keys.getPublic()).getFirst().contains("signature does not match"));

        Files.delete(root.resolve(BundleManifest.SIGNATURE_NAME));
        assertTrue(BundleManifest.verify(root, keys.getPublic()).getFirst().contains("unsigned"));
    }

    @Test
    void rejectsMalformedManifests() {
        assertThrows(IllegalArgumentException.class, () -> BundleManifest.parse("nonsense\n".getBytes()));
        String h = "0".repeat(64);
        assertThrows(IllegalArgumentException.class, () -> BundleManifest.parse((h + "  ../etc/passwd\n").getBytes()));
        assertThrows(IllegalArgumentException.class, () -> BundleManifest.parse((h + "  /abs\n").getBytes()));
        assertEquals(1, BundleManifest.parse((h + "  ok/file\n").getBytes()).sha256ByPath().size());
    }
}
