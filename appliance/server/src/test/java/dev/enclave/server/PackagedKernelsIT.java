package dev.enclave.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;

/**
 * The packaged application, which every bundle copies, carries the native CPU kernels for both architectures: the
 * x86-64 boxes run one, the qcs6490 bundle (Kryo cores) the other. Each is an ELF shared object for its machine.
 */
class PackagedKernelsIT {

    @Test
    void theApplicationCarriesTheKernelsForX8664AndAarch64() throws Exception {
        Path jar = null;
        try (DirectoryStream<Path> jars = Files.newDirectoryStream(AotCacheIT.APP.resolve("lib/main"), "*enclave-cpu-backend*.jar")) {
            for (Path j : jars) jar = j;
        }
        assertNotNull(jar, "the cpu-backend jar is packaged");
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            assertEquals(62, machine(zip, "native/linux-x86_64/libenclave_cpu.so"), "EM_X86_64");
            boolean ci = "true".equals(System.getenv("CI"));
            ZipEntry arm = zip.getEntry("native/linux-aarch64/libenclave_cpu.so");
            if (!ci) assumeTrue(arm != null, "no aarch64 cross compiler here");
            assertEquals(183, machine(zip, "native/linux-aarch64/libenclave_cpu.so"), "EM_AARCH64");
        }
    }

    /** e_machine of the ELF shared object at {@code name}. */
    private static int machine(ZipFile zip, String name) throws Exception {
        ZipEntry e = zip.getEntry(name);
        assertNotNull(e, name + " is in the jar");
        try (InputStream in = zip.getInputStream(e)) {
            byte[] h = in.readNBytes(20);
            assertEquals(0x7F, h[0] & 0xFF, name);
            assertEquals("ELF", new String(h, 1, 3, java.nio.charset.StandardCharsets.US_ASCII), name);
            assertEquals(2, h[4], name + " is 64-bit");
            assertEquals(3, h[16] & 0xFF, name + " is a shared object (ET_DYN)");
            return (h[18] & 0xFF) | (h[19] & 0xFF) << 8;
        }
    }
}
