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
 * while the server goes on answering others.
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
}
