package dev.enclave.server.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;

/** HTTPS with the local CA: clients that trust ca.pem connect; others are refused; session cookies are Secure. */
@QuarkusTest
@TestProfile(TlsProfile.class)
class TlsTest {

    @TestHTTPResource(value = "/", tls = true)
    URL https;

    /** TLS that trusts the appliance's local CA (ca.pem) and nothing else. */
    static SSLContext trustingCa() throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        ks.setCertificateEntry("enclave-ca", LocalCertificateAuthority.readCert(TlsProfile.DIR.resolve("tls/ca.pem")));
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(null, tmf.getTrustManagers(), null);
        return ssl;
    }

    static HttpClient trusting(boolean trustCa) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        if (trustCa) ks.setCertificateEntry("enclave-ca", LocalCertificateAuthority.readCert(TlsProfile.DIR.resolve("tls/ca.pem")));
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(null, tmf.getTrustManagers(), null);
        return HttpClient.newBuilder().sslContext(ssl).followRedirects(HttpClient.Redirect.NEVER).build();
    }

    URI uri(String path) {
        // the certificate names localhost and 127.0.0.1: hostname verification stays on
        return URI.create(https.toString().replaceAll("/$", "") + path);
    }

    @Test
    void servesHttpsWithTheLocalCa() throws Exception {
        HttpClient client = trusting(true);
        HttpResponse<String> health = client.send(HttpRequest.newBuilder(uri("/q/health")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, health.statusCode());
        assertTrue(health.headers().firstValue("Strict-Transport-Security").isPresent());

        // the system's trust store does not know the appliance's CA
        assertThrows(javax.net.ssl.SSLException.class, () -> HttpClient.newHttpClient()
                .send(HttpRequest.newBuilder(uri("/q/health")).build(), HttpResponse.BodyHandlers.ofString()));

        X509Certificate server = LocalCertificateAuthority.readCert(TlsProfile.DIR.resolve("tls/server.pem"));
        X509Certificate ca = LocalCertificateAuthority.readCert(TlsProfile.DIR.resolve("tls/ca.pem"));
        server.verify(ca.getPublicKey());
        List<String> names = server.getSubjectAlternativeNames().stream().map(n -> n.get(1).toString()).toList();
        assertTrue(names.containsAll(List.of("localhost", "127.0.0.1", "enclave.ward.local")), names.toString());
        assertEquals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
                Files.getPosixFilePermissions(TlsProfile.DIR.resolve("tls/ca-key.pem")));
    }

    /** The head deadline sits in front of TLS: a handshake followed by a trickled head is closed all the same. */
    @Test
    void aTrickledHeadOverTlsIsCutOff() throws Exception {
        SSLContext ssl = trustingCa();
        try (javax.net.ssl.SSLSocket sock = (javax.net.ssl.SSLSocket) ssl.getSocketFactory().createSocket(https.getHost(), https.getPort())) {
            sock.startHandshake();
            sock.setSoTimeout(300);
            long t0 = System.nanoTime();
            boolean closed = false;
            String head = "GET /q/health HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + "a".repeat(200);
            for (int i = 0; i < head.length() && !closed; i++) {
                try {
                    sock.getOutputStream().write(head.charAt(i));
                    sock.getOutputStream().flush();
                    closed = sock.getInputStream().read() < 0;
                } catch (java.net.SocketTimeoutException still) {
                    // nothing yet
                } catch (java.io.IOException reset) {
                    closed = true;
                }
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertTrue(closed, "the server closed the connection");
            assertTrue(seconds < 10, seconds + " s");
        }
    }

    /** TLS 1.2 with CBC or SHA-1 suites is refused; TLS 1.2 with AEAD and TLS 1.3 are served. */
    @Test
    void onlyModernCipherSuites() throws Exception {
        SSLContext ssl = trustingCa();
        for (String[] attempt : new String[][] {
                {"TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "refused"},
                {"TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "refused"},
                {"TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "served"},
                {"TLSv1.3", "TLS_AES_256_GCM_SHA384", "served"}}) {
            try (javax.net.ssl.SSLSocket sock = (javax.net.ssl.SSLSocket) ssl.getSocketFactory().createSocket(https.getHost(), https.getPort())) {
                sock.setEnabledProtocols(new String[] {attempt[0]});
                sock.setEnabledCipherSuites(new String[] {attempt[1]});
                sock.setSoTimeout(5000);
                boolean served;
                try {
                    sock.startHandshake();
                    served = true;
                } catch (javax.net.ssl.SSLException e) {
                    served = false;
                }
                assertEquals(attempt[2].equals("served"), served, attempt[0] + " " + attempt[1]);
            }
        }
    }

    /** The CA vouches for local names and private addresses only: a leaked key cannot impersonate public sites. */
    @Test
    void theLocalCaIsNameConstrained() throws Exception {
        X509Certificate ca = LocalCertificateAuthority.readCert(TlsProfile.DIR.resolve("tls/ca.pem"));
        assertTrue(ca.getCriticalExtensionOIDs().contains("2.5.29.30"), "critical name constraints");
        for (String ok : List.of("localhost", "enclave.ward.local", "box.lan", "127.0.0.1", "192.168.4.20", "10.1.2.3", "::1")) {
            assertTrue(LocalCertificateAuthority.permits(ca, ok), ok);
        }
        for (String no : List.of("google.com", "login.microsoftonline.com", "8.8.8.8", "local.evil.com")) {
            assertTrue(!LocalCertificateAuthority.permits(ca, no), no);
        }
        var refused = assertThrows(IllegalStateException.class,
                () -> LocalCertificateAuthority.ensure(TlsProfile.DIR.resolve("tls"), List.of("portal.hospital.example.com")));
        assertTrue(refused.getMessage().contains("portal.hospital.example.com"), refused.getMessage());
    }

    @Test
    void sessionCookiesAreSecureUnderTls() throws Exception {
        HttpClient client = trusting(true);
        client.send(HttpRequest.newBuilder(uri("/setup")).header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString("password=tls+admin+password&confirm=tls+admin+password")).build(),
                HttpResponse.BodyHandlers.ofString());
        HttpResponse<String> login = client.send(HttpRequest.newBuilder(uri("/login"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString("user=admin&password=tls+admin+password")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(303, login.statusCode());
        String cookie = login.headers().firstValue("Set-Cookie").orElseThrow();
        assertTrue(cookie.contains("Secure") && cookie.toLowerCase().contains("httponly") && cookie.contains("SameSite=Strict"), cookie);
    }
}
