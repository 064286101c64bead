package dev.enclave.server.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.RestAssured;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Before the admin exists the box acts for whoever reaches it on loopback; a web page the operator happens to
 * visit must not be that someone: not by a cross-site form or fetch (Origin, fetch metadata, a JSON body sent as
 * text/plain), not by DNS rebinding (its own name as Host). Sign-in is protected from cross-site posts too.
 */
@QuarkusTest
@TestProfile(FirstStartTest.Fresh.class)
class FirstStartTest {

    public static class Fresh implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("enclave.auth.enabled", "true", "enclave.data-dir", "target/test-first-start-" + ProcessHandle.current().pid());
        }
    }

    private static RawHttp.Response call(String method, String path, String host, String contentType, String body, String... headers)
            throws Exception {
        return RawHttp.send("127.0.0.1", RestAssured.port, method, path, host, contentType, body, headers);
    }

    @Test
    void onlyTheLocalOperatorActsBeforeTheAdminExists() throws Exception {
        String local = "127.0.0.1:" + RestAssured.port;
        String rebound = "evil.example:" + RestAssured.port;
        String setup = "password=" + "attacker+chosen+password" + "&confirm=" + "attacker+chosen+password";
        String collection = "{\"name\":\"planted\"}";
        // DNS rebinding: the attacker's name arrives as Host
        assertEquals(403, call("POST", "/setup", rebound, "application/x-www-form-urlencoded", setup).status());
        assertEquals(403, call("POST", "/rag/collections", rebound, "application/json", collection).status());
        assertEquals(403, call("GET", "/v1/models", rebound, null, null).status());
        // a cross-site form or fetch from a page the operator opened
        assertEquals(403, call("POST", "/setup", local, "application/x-www-form-urlencoded", setup, "Origin: http://evil.example").status());
        assertEquals(403, call("POST", "/rag/collections", local, "application/json", collection, "Origin: http://evil.example").status());
        assertEquals(403, call("POST", "/rag/collections", local, "application/json", collection, "Origin: null").status());
        assertEquals(403, call("POST", "/rag/collections", local, "application/json", collection, "Sec-Fetch-Site: cross-site").status());
        assertEquals(403, call("POST", "/rag/collections", local, "application/json", collection, "Sec-Fetch-Site: same-site",
                "Origin: http://127.0.0.1:3000").status());
        // a JSON route takes JSON only (text/plain is what a form can send without asking)
        assertEquals(415, call("POST", "/rag/collections", local, "text/plain", collection).status());
        // nothing of that happened
        assertEquals(200, call("GET", "/setup", local, null, null).status(), "still no admin");
        assertTrue(!call("GET", "/rag/collections", local, null, null).body().contains("planted"));
        // the operator on loopback, by address or by name
        assertEquals(200, call("GET", "/v1/models", "localhost:" + RestAssured.port, null, null).status());
        assertEquals(303, call("POST", "/setup", local, "application/x-www-form-urlencoded",
                "password=the+operator%27s+password&confirm=the+operator%27s+password", "Origin: http://" + local).status());
        // login CSRF: a cross-site sign-in into the attacker's account is refused
        assertEquals(403, call("POST", "/login", local, "application/x-www-form-urlencoded",
                "user=admin&password=the+operator%27s+password", "Origin: http://evil.example").status());
        // what a browser sends for its own form under Referrer-Policy: no-referrer
        assertEquals(303, call("POST", "/login", local, "application/x-www-form-urlencoded",
                "user=admin&password=the+operator%27s+password", "Origin: null", "Sec-Fetch-Site: same-origin").status());
        // once the admin exists, a LAN name is fine (the server then demands sign-in)
        assertEquals(401, call("GET", "/v1/models", "appliance.lan:" + RestAssured.port, null, null).status());
    }
}
