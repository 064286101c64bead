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
            description = "Check the audit log's keyed hash chain against its recorded head: any edited, deleted, reordered or cut-off entry is named. Exit 0 when intact, 1 when broken.")
    public static class Verify implements Callable<Integer> {

        @Option(names = "--db", paramLabel = "FILE", description = "Audit database (default: DATA_DIR/audit.sqlite).")
        Path db;

        @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = "${env:ENCLAVE_DATA_DIR:-data}",
                description = "The appliance's data directory (default: $ENCLAVE_DATA_DIR or ./data).")
        Path dataDir;

        @Option(names = "--key", paramLabel = "FILE", description = "The audit key (default: audit.key beside the database).")
        Path key;

        @Option(names = "--head", paramLabel = "FILE", description = "The recorded head (default: audit.sqlite.head beside the database).")
        Path head;

        @Option(names = "--json", description = "Print one JSON object.")
        boolean json;

        @Override
        public Integer call() throws Exception {
            Path file = db != null ? db : dataDir.resolve("audit.sqlite");
            if (!Files.isRegularFile(file)) {
                System.err.println("enclave: no audit database at " + file.toAbsolutePath());
                return 2;
            }
            AuditLog.Verification v = AuditLog.verify(file, key != null ? key : file.resolveSibling("audit.key"),
                    head != null ? head : file.resolveSibling(file.getFileName() + ".head"));
            if (json) {
                System.out.println("{\"ok\":" + v.ok() + ",\"entries\":" + v.entries() + ",\"first_bad\":"
                        + (v.ok() ? "null" : Long.toString(v.firstBad())) + ",\"reason\":" + Json.string(v.reason())
                        + ",\"head\":" + Json.string(v.headHash()) + ",\"keyed\":" + v.keyed() + "}");
            } else if (v.ok()) {
                System.out.println("audit log intact: " + v.entries() + " entries, head " + v.headHash()
                        + (v.keyed() ? " (HMAC-keyed, checked against the recorded head)" : " (no key given: unkeyed entries only)"));
            } else {
                System.out.println("audit log BROKEN at entry " + v.firstBad() + ": " + v.reason());
            }
            return v.ok() ? 0 : 1;
        }
    }
}
