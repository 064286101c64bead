package dev.enclave.server.cli;

import dev.enclave.server.audit.AuditLog;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code enclave audit ...}: the tamper-evident audit log. */
@Command(name = "audit", mixinStandardHelpOptions = true, description = "Audit log commands.",
        subcommands = {AuditCommand.Verify.class})
public class AuditCommand implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** {@code enclave audit verify}: recomputes the hash chain; exit 0 when intact, 1 when not. */
    @Command(name = "verify", mixinStandardHelpOptions = true,
            description = "Check the audit log's hash chain: any edited, deleted or reordered entry is named. Exit 0 when intact, 1 when broken.")
    public static class Verify implements Callable<Integer> {

        @Option(names = "--db", paramLabel = "FILE", description = "Audit database (default: DATA_DIR/audit.sqlite).")
        Path db;

        @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = "${env:ENCLAVE_DATA_DIR:-data}",
                description = "The appliance's data directory (default: $ENCLAVE_DATA_DIR or ./data).")
        Path dataDir;

        @Option(names = "--json", description = "Print one JSON object.")
        boolean json;

        @Override
        public Integer call() throws Exception {
            Path file = db != null ? db : dataDir.resolve("audit.sqlite");
            if (!Files.isRegularFile(file)) {
                System.err.println("enclave: no audit database at " + file.toAbsolutePath());
                return 2;
            }
            AuditLog.Verification v = AuditLog.verify(file);
            if (json) {
                System.out.println("{\"ok\":" + v.ok() + ",\"entries\":" + v.entries() + ",\"first_bad\":"
                        + (v.ok() ? "null" : Long.toString(v.firstBad())) + ",\"reason\":" + Json.string(v.reason())
                        + ",\"head\":" + Json.string(v.headHash()) + "}");
            } else if (v.ok()) {
                System.out.println("audit log intact: " + v.entries() + " entries, head " + v.headHash());
            } else {
                System.out.println("audit log BROKEN at entry " + v.firstBad() + ": " + v.reason());
            }
            return v.ok() ? 0 : 1;
        }
    }
}
