package dev.enclave.server;

import dev.enclave.server.cli.EnclaveCommand;
import io.quarkus.runtime.annotations.QuarkusMain;
import picocli.CommandLine;

/**
 * Entry point of the application jar and the native binary. Every command but {@code serve} runs as a plain
 * command-line program without booting Quarkus (no HTTP port opened, fast start); {@code serve} boots it.
 */
@QuarkusMain
public class EnclaveMain {

    public static void main(String... args) {
        int code = new CommandLine(new EnclaveCommand()).execute(args);
        System.exit(code);
    }
}
