package dev.enclave.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * A client that announces a body and trickles it is cut off (the test profile checks every 2 s for 1 KB/s),
 * while the server goes on answering others; so is one that trickles its request head (3 s in the test profile),
 * but not a keep-alive connection idle between requests nor a request whose answer takes longer than that.
 */
@QuarkusTest
class SlowClientTest {

    @Test
    void aTrickledBodyIsCutOff() throws Exception {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), RestAssured.port)) {
            s.setSoTimeout(20_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 100000\r\n\r\n{\"prompt\":").getBytes(StandardCharsets.UTF_8));
            out.flush();
            long t0 = System.nanoTime();
            InputStream in = s.getInputStream();
            // a byte now and then, far below the minimum rate, until the server closes the connection
            int read = 0;
            for (int i = 0; i < 40 && read >= 0; i++) {
                try {
                    out.write('"');
                    out.flush();
                } catch (java.io.IOException closed) {
                    break;
                }
                s.setSoTimeout(500);
                try {
                    read = in.read();
                } catch (java.net.SocketTimeoutException still) {
                    read = 0;
                } catch (java.io.IOException reset) {
                    read = -1;
                }
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertEquals(-1, read, "the server closed the connection");
            assertTrue(seconds < 15, "within a few checks: " + seconds + " s");
        }
        RestAssured.given().contentType("application/json").body("{\"prompt\":\"Once\",\"max_tokens\":2}")
                .post("/v1/completions").then().statusCode(200);
    }

    @Test
    void aTrickledHeadIsCutOff() throws Exception {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), RestAssured.port)) {
            long t0 = System.nanoTime();
            int read = trickle(s, "GET /q/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + "a".repeat(200));
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertEquals(-1, read, "the server closed the connection");
            assertTrue(seconds > 2.5 && seconds < 10, "at the deadline: " + seconds + " s");
        }
    }

    @Test
    void anIdleKeepAliveConnectionIsNotTheHeadsDeadline() throws Exception {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), RestAssured.port)) {
            s.setSoTimeout(20_000);
            String get = "GET /q/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
            s.getOutputStream().write(get.getBytes(StandardCharsets.US_ASCII));
            assertTrue(readResponse(s.getInputStream()).startsWith("HTTP/1.1 200"));
            Thread.sleep(4_500);    // longer than the head deadline, with nothing sent
            s.getOutputStream().write(get.getBytes(StandardCharsets.US_ASCII));
            assertTrue(readResponse(s.getInputStream()).startsWith("HTTP/1.1 200"), "still open after idling");
            // the next request on the same connection is held to the deadline again once it starts
            long t0 = System.nanoTime();
            assertEquals(-1, trickle(s, "GET /q/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + "a".repeat(200)));
            assertTrue((System.nanoTime() - t0) / 1e9 < 10);
        }
    }

    @Test
    void aRequestInFlightOutlivesTheHeadDeadline() throws Exception {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), RestAssured.port)) {
            s.setSoTimeout(20_000);
            String json = " ".repeat(12_000) + "{\"prompt\":\"Once\",\"max_tokens\":2}";
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + json.length() + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            byte[] body = json.getBytes(StandardCharsets.US_ASCII);
            // 3 KB a second, three times the body rate (the guard checks every 2 s in the test profile: at 1.5 KB a
            // second, a check that fell between two writes saw one and closed the connection), and the whole body
            // still takes longer than the head deadline
            for (int off = 0; off < body.length; off += 1_500) {
                out.write(body, off, Math.min(1_500, body.length - off));
                out.flush();
                Thread.sleep(500);
            }
            assertTrue(readResponse(s.getInputStream()).startsWith("HTTP/1.1 200"));
        }
    }

    /** Sends text a byte every 300 ms until the server closes; -1 when it did, 0 when it never did. */
    private static int trickle(Socket s, String text) throws Exception {
        OutputStream out = s.getOutputStream();
        InputStream in = s.getInputStream();
        s.setSoTimeout(300);
        for (int i = 0; i < text.length(); i++) {
            try {
                out.write(text.charAt(i));
                out.flush();
            } catch (java.io.IOException closed) {
                return -1;
            }
            try {
                if (in.read() < 0) {
                    return -1;
                }
                return 0;       // an answer to a head never completed: not what a deadline does
            } catch (java.net.SocketTimeoutException still) {
                // nothing yet
            } catch (java.io.IOException reset) {
                return -1;
            }
        }
        return 0;
    }

    /** Reads one HTTP/1.1 response (Content-Length or chunked) and returns its head. */
    private static String readResponse(InputStream in) throws Exception {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                throw new java.io.EOFException("closed after: " + head);
            }
            head.append((char) c);
        }
        String lower = head.toString().toLowerCase(java.util.Locale.ROOT);
        int cl = lower.indexOf("content-length:");
        if (cl >= 0) {
            int n = Integer.parseInt(lower.substring(cl + 15, lower.indexOf("\r\n", cl)).trim());
            in.readNBytes(n);
        } else if (lower.contains("transfer-encoding: chunked")) {
            StringBuilder tail = new StringBuilder();
            while (!tail.toString().endsWith("\r\n0\r\n\r\n") && !tail.toString().equals("0\r\n\r\n")) {
                int c = in.read();
                if (c < 0) {
                    break;
                }
                tail.append((char) c);
            }
        }
        return head.toString();
    }
}
