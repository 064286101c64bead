package dev.enclave.server.security;

import static io.restassured.RestAssured.given;

import io.restassured.response.Response;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Test helpers: first-start setup, sign-in sessions, CSRF tokens scraped from pages. */
public final class Admin {

    public static final String PASSWORD = "correct horse battery staple";

    private Admin() {
    }

    /** Sets the admin password through the first-start page if no admin exists yet. */
    public static synchronized void ensure() {
        Response r = given().redirects().follow(false).get("/setup");
        if (r.statusCode() == 200) {
            given().redirects().follow(false).formParam("password", PASSWORD).formParam("confirm", PASSWORD)
                    .post("/setup").then().statusCode(303);
        }
    }

    /** Signs in; returns the session cookie value. */
    public static String login(String user, String password) {
        Response r = given().redirects().follow(false).formParam("user", user).formParam("password", password).post("/login");
        if (r.statusCode() != 303) throw new AssertionError("login of " + user + " failed: " + r.statusCode());
        return r.getCookie(AuthHandler.COOKIE);
    }

    /** The CSRF token of a session, from the meta tag every panel page carries. */
    public static String csrf(String session) {
        String html = given().cookie(AuthHandler.COOKIE, session).get("/settings").then().statusCode(200).extract().asString();
        Matcher m = Pattern.compile("<meta name=\"csrf\" content=\"([^\"]+)\"").matcher(html);
        if (!m.find()) throw new AssertionError("no csrf meta tag");
        return m.group(1);
    }
}
