package dev.enclave.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Properties;
import org.junit.jupiter.api.Test;

class DeviceProfileTest {

    @Test
    void everyBuiltInProfileIsValid() {
        for (String name : DeviceProfile.BUILT_IN) {
            DeviceProfile p = DeviceProfile.builtIn(name);
            assertEquals(name, p.name());
            assertTrue(p.backendOrder().contains("cpu"), name + " must fall back to the CPU");
        }
        DeviceProfile qcs = DeviceProfile.builtIn("qcs6490");
        assertEquals(8, qcs.cores());
        assertEquals(List.of(4, 5, 6, 7), qcs.inferenceCores());
        assertEquals("snpe-dsp", qcs.backendOrder().getFirst());
    }

    @Test
    void invalidProfilesListEveryProblem() {
        Properties p = new Properties();
        p.setProperty("schema.version", "2");
        p.setProperty("cpu.arch", "mips");
        p.setProperty("cpu.cores", "4");
        p.setProperty("inference.cores", "1,9");
        p.setProperty("memory.budget.mib", "10");
        p.setProperty("backend.order", "cpu,quantum");
        p.setProperty("serve.max-active", "0");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceProfile.parse("bad", p));
        for (String part : new String[] {"schema.version", "cpu.arch", "core 9", "memory.budget.mib", "quantum", "serve.max-active"}) {
            assertTrue(e.getMessage().contains(part), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> DeviceProfile.builtIn("toaster"));
    }
}
