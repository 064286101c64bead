package dev.enclave.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Nothing leaves the box. (1) The built application runs inside a network namespace with nothing but loopback
 * ({@code unshare -n}): it serves, generates, embeds, indexes and retrieves. (2) Outside it, every socket the
 * server process holds during a workload is sampled from {@code /proc}: none has a non-local remote address.
 */
class NoNetworkIT {

    static final Path APP = Path.of("target/quarkus-app/quarkus-run.jar");
    static String java;

    @BeforeAll
    static void app() {
        java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        assertTrue(Files.isRegularFile(APP), "the application is built by the package phase: " + APP);
    }

    static boolean unshareWorks() {
        try {
            Process p = new ProcessBuilder("unshare", "-n", "true").redirectErrorStream(true).start();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static Path tinyBeir(Path dir) throws IOException {
        Path ds = Files.createDirectories(dir.resolve("beir"));
        Files.writeString(ds.resolve("corpus.jsonl"), """
                {"_id": "d1", "title": "Insulin", "text": "Insulin lowers blood glucose."}
                {"_id": "d2", "title": "Malaria", "text": "Malaria is spread by mosquitoes."}
                """);
        Files.writeString(ds.resolve("queries.jsonl"), """
                {"_id": "q1", "text": "what lowers blood sugar"}
                """);
        Files.createDirectories(ds.resolve("qrels"));
        Files.writeString(ds.resolve("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
        return ds;
    }

    String jvm() {
        return java + " --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -jar " + APP.toAbsolutePath();
    }

    @Test
    void servesAndRetrievesInsideANetworkNamespaceWithOnlyLoopback() throws Exception {
        boolean ok = unshareWorks();
        if (System.getenv("CI") == null) Assumptions.assumeTrue(ok, "unshare -n is not permitted here");
        assertTrue(ok, "CI must allow unshare -n (runs as root)");
        Path dir = Files.createTempDirectory("offline");
        int port = freePort();
        String script = String.join("\n",
                "set -e",
                "ip link set lo up 2>/dev/null || true",
                // only loopback exists: no route to anywhere else
                "test \"$(ip -o link show | wc -l)\" = 1",
                jvm() + " serve --port " + port + " --data-dir " + dir.resolve("data") + " > " + dir.resolve("server.log") + " 2>&1 &",
                "pid=$!",
                "for i in $(seq 1 150); do " + jvm() + " loadtest --url http://127.0.0.1:" + port
                        + " --workload single --clients 1 --requests 1 --max-tokens 4 --json > /dev/null 2>&1 && break; sleep 0.2; done",
                jvm() + " loadtest --url http://127.0.0.1:" + port + " --workload concurrent --clients 2 --requests 2 --max-tokens 8 --json > " + dir.resolve("load.json"),
                "kill $pid; wait $pid || true",
                "ENCLAVE_NATIVE_DIR=" + dir.resolve("native") + " " + jvm() + " rag eval --dataset " + tinyBeir(dir) + " --json > " + dir.resolve("eval.json"));
        Process p = new ProcessBuilder("unshare", "-n", "bash", "-c", script).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "offline run timed out");
        assertEquals(0, p.exitValue(), out + "\n" + (Files.exists(dir.resolve("server.log")) ? Files.readString(dir.resolve("server.log")) : ""));
        String load = Files.readString(dir.resolve("load.json"));
        assertTrue(load.contains("\"errors\":0"), load);
        String eval = Files.readString(dir.resolve("eval.json"));
        assertTrue(eval.contains("\"ndcg_at_10\":1.0000"), eval);
    }

    @Test
    void theServerHoldsNoSocketToANonLocalAddress() throws Exception {
        Path dir = Files.createTempDirectory("sockets");
        int port = freePort();
        Process server = new ProcessBuilder(List.of(jvm().split(" ")))
                .command(new ArrayList<>(List.of(jvm().split(" "))) {{
                    addAll(List.of("serve", "--port", Integer.toString(port), "--data-dir", dir.resolve("data").toString()));
                }})
                .redirectErrorStream(true).redirectOutput(dir.resolve("server.log").toFile()).start();
        Set<String> remotes = new HashSet<>();
        try {
            List<String> load = new ArrayList<>(List.of(jvm().split(" ")));
            load.addAll(List.of("loadtest", "--url", "http://127.0.0.1:" + port, "--workload", "concurrent",
                    "--clients", "2", "--requests", "3", "--max-tokens", "16", "--json"));
            long deadline = System.currentTimeMillis() + 60_000;
            Process client = null;
            String last = "";
            while (System.currentTimeMillis() < deadline) {
                sample(server.pid(), remotes);
                if (client == null) {
                    client = new ProcessBuilder(load).redirectErrorStream(true).start();
                } else if (!client.isAlive()) {
                    String out = new String(client.getInputStream().readAllBytes());
                    last = out;
                    if (client.exitValue() == 0 && out.contains("\"errors\":0")) break;
                    Thread.sleep(300);
                    client = null; // server not up yet: try again
                }
                Thread.sleep(20);
            }
            assertTrue(System.currentTimeMillis() < deadline, "the workload did not finish: " + last);
        } finally {
            server.destroy();
            server.waitFor(30, TimeUnit.SECONDS);
        }
        assertTrue(!remotes.isEmpty(), "sampling saw the server's own sockets");
        for (String r : remotes) {
            assertTrue(r.startsWith("127.") || r.equals("0.0.0.0") || r.equals("::1") || r.equals("::") || r.startsWith("::ffff:127."),
                    "non-local remote address " + r + " in " + remotes);
        }
    }

    /** Remote addresses of the TCP/UDP sockets process {@code pid} holds, from /proc. */
    static void sample(long pid, Set<String> remotes) {
        Set<String> inodes = new HashSet<>();
        try (var fds = Files.newDirectoryStream(Path.of("/proc", Long.toString(pid), "fd"))) {
            for (Path fd : fds) {
                try {
                    String link = Files.readSymbolicLink(fd).toString();
                    if (link.startsWith("socket:[")) inodes.add(link.substring(8, link.length() - 1));
                } catch (IOException ignored) {
                    // fd closed meanwhile
                }
            }
        } catch (IOException e) {
            return;
        }
        for (String table : new String[] {"tcp", "tcp6", "udp", "udp6"}) {
            try {
                List<String> lines = Files.readAllLines(Path.of("/proc", Long.toString(pid), "net", table));
                for (String line : lines.subList(1, lines.size())) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length > 9 && inodes.contains(f[9])) remotes.add(decode(f[2].split(":")[0]));
                }
            } catch (IOException ignored) {
                // table absent
            }
        }
    }

    static String decode(String hex) {
        try {
            byte[] b = new byte[hex.length() / 2];
            // /proc/net stores addresses as host-order 32-bit words
            for (int w = 0; w < b.length / 4; w++) {
                for (int i = 0; i < 4; i++) b[w * 4 + i] = (byte) Integer.parseInt(hex.substring(w * 8 + (3 - i) * 2, w * 8 + (3 - i) * 2 + 2), 16);
            }
            return InetAddress.getByAddress(b).getHostAddress().replace("0:0:0:0:0:0:0:1", "::1").replace("0:0:0:0:0:0:0:0", "::");
        } catch (Exception e) {
            return hex;
        }
    }
}
