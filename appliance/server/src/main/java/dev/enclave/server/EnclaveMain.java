package dev.enclave.server;

import dev.enclave.server.cli.EnclaveCommand;
import dev.enclave.server.model.RuntimeConfig;
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
        String[] line = rest.toArray(String[]::new);
        boolean loads = line.length > 0 && RuntimeConfig.LOADS_MODEL.contains(line[0]);
        if (loads) {
            // the configuration (a tenth of a second to build) on the second core while picocli reads the command line
            Thread.ofPlatform().daemon().name("enclave-config").start(RuntimeConfig::prepare);
        }
        if (loads || line.length > 0 && line[0].equals("serve")) {
            // and, before the model file is even opened (the server's: while Quarkus starts), what its first token needs
            // whatever the model: the JIT's work on the element-wise loops and the sampler (which the loader would
            // otherwise wait for), and the native kernels' downcalls (the linker generates code for them)
            Thread.ofPlatform().daemon().name("enclave-prewarm").start(dev.enclave.runtime.tensor.KernelWarmup::warmShared);
            Thread.ofPlatform().daemon().name("enclave-natives").start(dev.enclave.runtime.backend.cpu.CpuBackend::preloadNativeKernels);
        }
        return commandLine(verbose, line.length == 0 ? null : line[0]).execute(line);
    }

    /** The command line with every subcommand. */
    public static CommandLine commandLine(boolean verbose) {
        return commandLine(verbose, null);
    }

    /**
     * The command line for a run whose first word is {@code first}: when that names a subcommand, only that one is
     * added (the others' help, parsing and suggestions are not needed); otherwise all of them.
     */
    static CommandLine commandLine(boolean verbose, String first) {
        CommandLine cl = new CommandLine(new EnclaveCommand());
        Class<?> named = first == null || first.equals("help") ? null : EnclaveCommand.SUBCOMMANDS.stream()
                .filter(c -> isNamed(c, first)).findFirst().orElse(null);
        for (Class<?> c : named != null ? java.util.List.<Class<?>>of(named) : EnclaveCommand.SUBCOMMANDS) cl.addSubcommand(c);
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

    private static boolean isNamed(Class<?> command, String word) {
        CommandLine.Command c = command.getAnnotation(CommandLine.Command.class);
        return c != null && (c.name().equals(word) || java.util.Arrays.asList(c.aliases()).contains(word));
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
