package dev.enclave.server;

import dev.enclave.server.cli.EnclaveCommand;
import io.quarkus.runtime.annotations.QuarkusMain;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;

/**
 * Entry point of the application jar and the native binary. Every command but {@code serve} runs as a plain
 * command-line program without booting Quarkus (no HTTP port opened, fast start); {@code serve} boots it.
 */
@QuarkusMain
public class EnclaveMain {

    public static void main(String... args) {
        System.exit(run(args));
    }

    /**
     * Runs one command line. A failure prints one line naming the problem ({@code enclave: ...}) and exits 1; the
     * stack trace only with {@code --verbose} (anywhere on the line).
     */
    public static int run(String... args) {
        List<String> rest = new ArrayList<>();
        boolean verbose = false;
        for (String a : args) {
            if (a.equals("--verbose")) verbose = true;
            else rest.add(a);
        }
        return commandLine(verbose).execute(rest.toArray(String[]::new));
    }

    public static CommandLine commandLine(boolean verbose) {
        CommandLine cl = new CommandLine(new EnclaveCommand());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("enclave: " + oneLine(ex));
            if (verbose) ex.printStackTrace(cmd.getErr());
            cmd.getErr().flush();
            return 1;
        });
        // a mistyped flag or value: one line and the command's --help, not the whole usage text
        cl.setParameterExceptionHandler((ex, rest) -> {
            CommandLine c = ex.getCommandLine();
            c.getErr().println("enclave: " + ex.getMessage() + " (see " + c.getCommandSpec().qualifiedName() + " --help)");
            c.getErr().flush();
            return c.getCommandSpec().exitCodeOnInvalidInput();
        });
        return cl;
    }

    /** What went wrong, in one line: the innermost message that says something (Quarkus wraps a failed start). */
    public static String oneLine(Throwable ex) {
        Throwable t = ex;
        String msg = null;
        while (t != null) {
            if (t.getMessage() != null && !t.getMessage().isBlank()) msg = t.getMessage();
            if (t.getCause() == null || t.getCause() == t) break;
            t = t.getCause();
        }
        if (msg == null) msg = ex.getClass().getSimpleName();
        if (ex instanceof OutOfMemoryError) msg = "out of memory (" + msg + "): raise -Xmx in ENCLAVE_JAVA_OPTS";
        return msg.strip().replaceAll("\\s*\\R\\s*", " ");
    }
}
