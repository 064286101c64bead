package dev.enclave.server.cli;

import picocli.CommandLine.Command;

/** {@code enclave}: the appliance's command line. */
@Command(name = "enclave",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Enclave: a private-AI appliance. Local language model, OpenAI-compatible API, web panel.")
public class EnclaveCommand implements Runnable {

    /**
     * The subcommands, added by {@link dev.enclave.server.EnclaveMain}: all of them for the root's help, only the
     * one named for a run (picocli reads every command's annotations when it is added, a quarter second for all).
     */
    public static final java.util.List<Class<?>> SUBCOMMANDS = java.util.List.of(ServeCommand.class, GenerateCommand.class, TokenizeCommand.class, LogitsCommand.class, PerplexityCommand.class, SynthCommand.class, BenchCommand.class, LoadtestCommand.class, RagCommand.class, AuditCommand.class,
                InstallerCommands.Bundle.class, InstallerCommands.Install.class, InstallerCommands.Upgrade.class,
                InstallerCommands.Rollback.class, InstallerCommands.Uninstall.class, InstallerCommands.Verify.class,
                InstallerCommands.Status.class, InstallerCommands.ImportModel.class, InstallerCommands.Health.class,
                InstallerCommands.Device.class,
                picocli.CommandLine.HelpCommand.class);

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
