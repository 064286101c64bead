package dev.enclave.server.security;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.server.audit.AuditLog;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Authentication, roles, CSRF, lockout, API keys and the audit trail, over real HTTP with auth on. */
@QuarkusTest
@TestProfile(AuthOnProfile.class)
class SecurityTest {

    @BeforeEach
    void admin() {
        Admin.ensure();
    }

    static String newUser(String session, String role) {
        String name = role + Long.toHexString(System.nanoTime());
        given().cookie(AuthHandler.COOKIE, session).formParam("name", name).formParam("role", role)
                .formParam("password", "a long enough password").post("/admin/users?_csrf=" + Admin.csrf(session))
                .then().statusCode(200).body(containsString("Created " + name));
        return name;
    }

    static String newKey(String session, String user) {
        return newKey(session, user, "api", "30");
    }

    static String newKey(String session, String user, String scopes, String days) {
        given().cookie(AuthHandler.COOKIE, session).redirects().follow(false).formParam("user", user)
                .formParam("scopes", scopes).formParam("days", days)
                .post("/admin/keys?_csrf=" + Admin.csrf(session)).then().statusCode(303);
        String html = given().cookie(AuthHandler.COOKIE, session).get("/admin/users").then().statusCode(200).extract().asString();
        Matcher m = Pattern.compile("id=\"key-value\">(ek_[A-Za-z0-9_-]+)<").matcher(html);
        assertTrue(m.find(), "the new key is shown once");
        String again = given().cookie(AuthHandler.COOKIE, session).get("/admin/users").then().extract().asString();
        assertTrue(!again.contains(m.group(1)), "and only once");
        return m.group(1);
    }

    @Test
    void apiKeyScopesAreEnforcedAndExpiryValidated() {
        String admin = Admin.login("admin", Admin.PASSWORD);
        String tech = newUser(admin, "technician");
        String reader = newKey(admin, tech, "rag:read", "30");
        given().header("Authorization", "Bearer " + reader).get("/rag/collections").then().statusCode(200);
        given().header("Authorization", "Bearer " + reader).contentType(ContentType.JSON).body("{\"query\":\"x\"}")
                .post("/rag/search").then().statusCode(200);
        given().header("Authorization", "Bearer " + reader).get("/v1/models").then().statusCode(403);
        given().header("Authorization", "Bearer " + reader).contentType(ContentType.JSON)
                .body("{\"name\":\"scoped" + System.nanoTime() + "\"}").post("/rag/collections").then().statusCode(403);
        String inference = newKey(admin, "admin", "inference", "1");
        given().header("Authorization", "Bearer " + inference).get("/v1/models").then().statusCode(200);
        given().header("Authorization", "Bearer " + inference).get("/rag/collections").then().statusCode(403);
        // a key never opens panel pages, even an admin's with every scope
        String all = newKey(admin, "admin", "api", "1");
        given().header("Authorization", "Bearer " + all).redirects().follow(false).get("/admin/users").then().statusCode(403);
        given().header("Authorization", "Bearer " + all).get("/q/metrics").then().statusCode(200);
        // refused at creation: a negative expiry (once: never expires) and an unknown scope
        for (String[] bad : new String[][] {{"api", "-5"}, {"everything", "30"}, {"api", "99999"}}) {
            String page = given().cookie(AuthHandler.COOKIE, admin).formParam("user", tech).formParam("scopes", bad[0])
                    .formParam("days", bad[1]).post("/admin/keys?_csrf=" + Admin.csrf(admin)).then().statusCode(200)
                    .extract().asString();
            assertTrue(page.contains("expiry must be") || page.contains("unknown API key scope"), bad[0] + "/" + bad[1]);
            assertTrue(!page.contains("id=\"key-value\""), "no key was made for " + bad[0] + "/" + bad[1]);
        }
    }

    @Test
    void everyRouteNeedsCredentialsButHealth() {
        for (String api : List.of("/v1/models", "/api/tags", "/rag/collections", "/q/metrics")) {
            given().get(api).then().statusCode(401).header("WWW-Authenticate", containsString("Bearer"));
        }
        given().contentType(ContentType.JSON).body("{\"prompt\":\"x\"}").post("/v1/completions").then().statusCode(401);
        for (String page : List.of("/", "/chat", "/documents", "/models", "/admin/users", "/admin/audit", "/settings",
                "/generate.html", "/panel.js")) {
            given().redirects().follow(false).get(page).then().statusCode(302).header("Location", "/login");
        }
        given().get("/q/health").then().statusCode(200);
        given().get("/login").then().statusCode(200)
                .header("Content-Security-Policy", containsString("frame-ancestors 'none'"))
                .header("Content-Security-Policy", containsString("script-src 'self'"))
                .header("X-Content-Type-Options", "nosniff");
    }

    @Test
    void rolesAreEnforcedOnPagesAndApis() {
        String admin = Admin.login("admin", Admin.PASSWORD);
        String techName = newUser(admin, "technician");
        String auditorName = newUser(admin, "auditor");
        String clientName = newUser(admin, "client");

        String tech = Admin.login(techName, "a long enough password");
        given().cookie(AuthHandler.COOKIE, tech).get("/").then().statusCode(200).body(containsString("Dashboard"));
        given().cookie(AuthHandler.COOKIE, tech).get("/documents").then().statusCode(200);
        given().cookie(AuthHandler.COOKIE, tech).get("/admin/users").then().statusCode(403);
        given().cookie(AuthHandler.COOKIE, tech).get("/admin/audit").then().statusCode(403);

        String auditor = Admin.login(auditorName, "a long enough password");
        given().cookie(AuthHandler.COOKIE, auditor).get("/admin/audit").then().statusCode(200);
        given().cookie(AuthHandler.COOKIE, auditor).get("/admin/users").then().statusCode(403);
        given().cookie(AuthHandler.COOKIE, auditor).get("/v1/models").then().statusCode(403);

        // a role change applies at once: the auditor's session ends; as a technician they may use the API
        given().cookie(AuthHandler.COOKIE, admin).formParam("role", "technician").post("/admin/users/" + auditorName + "/role?_csrf=" + Admin.csrf(admin))
                .then().statusCode(200).body(containsString(auditorName + " is now technician"));
        given().cookie(AuthHandler.COOKIE, auditor).redirects().follow(false).get("/admin/audit").then().statusCode(302);
        String promoted = Admin.login(auditorName, "a long enough password");
        given().cookie(AuthHandler.COOKIE, promoted).get("/v1/models").then().statusCode(200);
        given().cookie(AuthHandler.COOKIE, admin).formParam("role", "client").post("/admin/users/admin/role?_csrf=" + Admin.csrf(admin))
                .then().statusCode(200).body(containsString("last admin"));

        String clientKey = newKey(admin, clientName);
        given().header("Authorization", "Bearer " + clientKey).get("/v1/models").then().statusCode(200);
        given().header("Authorization", "Bearer " + clientKey).contentType(ContentType.JSON)
                .body("{\"name\":\"nope\"}").post("/rag/collections").then().statusCode(403);
        given().header("Authorization", "Bearer " + clientKey).redirects().follow(false).get("/").then().statusCode(403);
        given().header("Authorization", "Bearer ek_000000000000_forged").get("/v1/models").then().statusCode(401);
    }

    @Test
    void csrfTokenIsRequiredForSessionWrites() {
        String admin = Admin.login("admin", Admin.PASSWORD);
        given().cookie(AuthHandler.COOKIE, admin).formParam("name", "x" + System.nanoTime()).formParam("role", "client")
                .formParam("password", "a long enough password").post("/admin/users").then().statusCode(403);
        given().cookie(AuthHandler.COOKIE, admin).formParam("name", "x" + System.nanoTime()).formParam("role", "client")
                .formParam("password", "a long enough password").post("/admin/users?_csrf=wrong").then().statusCode(403);
        given().cookie(AuthHandler.COOKIE, admin).contentType(ContentType.JSON).body("{\"name\":\"c" + System.nanoTime() + "\"}")
                .post("/rag/collections").then().statusCode(403);
        given().cookie(AuthHandler.COOKIE, admin).header("X-CSRF-Token", Admin.csrf(admin)).contentType(ContentType.JSON)
                .body("{\"name\":\"c" + System.nanoTime() + "\"}").post("/rag/collections").then().statusCode(201);
        // a foreign origin is refused even with the token
        given().cookie(AuthHandler.COOKIE, admin).header("X-CSRF-Token", Admin.csrf(admin)).header("Origin", "http://evil.example")
                .contentType(ContentType.JSON).body("{\"name\":\"d" + System.nanoTime() + "\"}")
                .post("/rag/collections").then().statusCode(403);
    }

    private static RawHttp.Response login(String from, String user, String password) throws Exception {
        int port = io.restassured.RestAssured.port;
        return RawHttp.send(from, port, "POST", "/login", "127.0.0.1:" + port, "application/x-www-form-urlencoded",
                "user=" + java.net.URLEncoder.encode(user, java.nio.charset.StandardCharsets.UTF_8)
                        + "&password=" + java.net.URLEncoder.encode(password, java.nio.charset.StandardCharsets.UTF_8));
    }

    /**
     * Failures lock a (name, address) pair, known names and unknown alike: an attacker cannot lock a user out of
     * another address, nor tell real names from the answers; an admin can unlock.
     */
    @Test
    void bruteForceLocksTheNameFromThatAddressOnly() throws Exception {
        String admin = Admin.login("admin", Admin.PASSWORD);
        String victim = newUser(admin, "technician");
        String ghost = "nobody" + System.nanoTime();
        for (String name : List.of(victim, ghost)) {
            List<Integer> codes = new java.util.ArrayList<>();
            for (int i = 0; i < LoginThrottle.FREE_FAILURES; i++) codes.add(login("127.0.0.3", name, "wrong password " + i).status());
            assertEquals(List.of(401, 401, 401, 401, 423), codes, name);
        }
        // the same answer, word for word, for the real name and the made-up one
        RawHttp.Response real = login("127.0.0.3", victim, "a long enough password");
        RawHttp.Response fake = login("127.0.0.3", ghost, "a long enough password");
        assertEquals(423, real.status());
        assertEquals(fake.status(), real.status());
        assertEquals(fake.body(), real.body());
        // the user signs in from their own address all the same
        assertEquals(303, login("127.0.0.4", victim, "a long enough password").status());
        // an admin unlocks the pair
        given().cookie(AuthHandler.COOKIE, admin).post("/admin/users/" + victim + "/unlock?_csrf=" + Admin.csrf(admin))
                .then().statusCode(200).body(containsString("Unlocked"));
        assertEquals(303, login("127.0.0.3", victim, "a long enough password").status());
    }

    @Test
    void revokedKeysStopWorkingAtOnce() {
        String admin = Admin.login("admin", Admin.PASSWORD);
        String user = newUser(admin, "client");
        String key = newKey(admin, user);
        given().header("Authorization", "Bearer " + key).contentType(ContentType.JSON)
                .body("{\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0}")
                .post("/v1/completions").then().statusCode(200);
        String id = key.split("_")[1];
        given().cookie(AuthHandler.COOKIE, admin).post("/admin/keys/" + id + "/revoke?_csrf=" + Admin.csrf(admin))
                .then().statusCode(200).body(containsString("Revoked key " + id));
        given().header("Authorization", "Bearer " + key).get("/v1/models").then().statusCode(401);
    }

    @Test
    void theAuditTrailRecordsWhoDidWhat() throws Exception {
        String admin = Admin.login("admin", Admin.PASSWORD);
        given().redirects().follow(false).formParam("user", "admin").formParam("password", "nope nope nope").post("/login");
        String user = newUser(admin, "client");
        String key = newKey(admin, user);
        given().header("Authorization", "Bearer " + key).contentType(ContentType.JSON)
                .body("{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":3}")
                .post("/v1/chat/completions").then().statusCode(200);
        Thread.sleep(200); // the inference entry is written when generation completes
        String page = given().cookie(AuthHandler.COOKIE, admin).get("/admin/audit").then().statusCode(200).extract().asString();
        for (String action : List.of("auth.login", "auth.failure", "user.create", "key.create", "inference.chat")) {
            assertTrue(page.contains(action), "audit shows " + action);
        }
        given().cookie(AuthHandler.COOKIE, admin).get("/admin/audit?action=inference.chat").then().statusCode(200)
                .body(containsString("prompt_tokens="));
        String csv = given().cookie(AuthHandler.COOKIE, admin).get("/admin/audit/export?format=csv").then().statusCode(200)
                .header("Content-Type", containsString("text/csv")).extract().asString();
        assertTrue(csv.startsWith("seq,at,actor,action"));
        given().cookie(AuthHandler.COOKIE, admin).get("/admin/audit/export?format=json").then().statusCode(200)
                .body("[0].hash.size()", equalTo(64));
        given().cookie(AuthHandler.COOKIE, admin).post("/admin/audit/verify?_csrf=" + Admin.csrf(admin)).then()
                .statusCode(200).body(containsString("Chain intact"));
        assertTrue(AuditLog.verify(Path.of(AuthOnProfile.DATA_DIR, "audit.sqlite")).ok());
    }

    @Test
    void refusesNonLoopbackWithoutAuthOrAdmin() throws Exception {
        Path dir = Files.createTempDirectory("sec");
        SecurityService noAuth = new SecurityService(false, dir, "0.0.0.0", Optional.empty(), false, Optional.empty());
        assertThrows(IllegalStateException.class, () -> noAuth.onStart(null));
        SecurityService plainHttp = new SecurityService(true, dir, "0.0.0.0", Optional.empty(), false, Optional.empty());
        var plain = assertThrows(IllegalStateException.class, () -> plainHttp.onStart(null));
        assertTrue(plain.getMessage().contains("plain HTTP"), plain.getMessage());
        SecurityService noAdmin = new SecurityService(true, dir, "0.0.0.0", Optional.empty(), false, Optional.of("server.pem"));
        var e = assertThrows(IllegalStateException.class, () -> noAdmin.onStart(null));
        assertTrue(e.getMessage().contains("admin password"));
        Path pw = Files.writeString(dir.resolve("pw"), "installer-chosen password\n");
        SecurityService installed = new SecurityService(true, dir, "0.0.0.0", Optional.of(pw), false, Optional.of("server.pem"));
        installed.onStart(null);
        assertEquals(UserStore.Login.OK, installed.users().login("admin", "installer-chosen password", System.currentTimeMillis()));
        installed.close();
        noAdmin.close();
        plainHttp.close();
        noAuth.close();
    }
}
