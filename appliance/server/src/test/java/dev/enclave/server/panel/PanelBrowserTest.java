package dev.enclave.server.panel;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.enclave.server.security.Admin;
import dev.enclave.server.security.AuthHandler;
import dev.enclave.server.security.AuthOnProfile;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import java.io.File;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The panel in a real headless Chromium (Debian's chromium and chromedriver): sign in, see the dashboard, upload a
 * document and see it indexed, chat with a streamed answer and citations, see the audit entries and verify the
 * chain, sign out; a technician cannot open admin pages. Screenshots land in target/screenshots/.
 */
@QuarkusTest
@TestProfile(AuthOnProfile.class)
class PanelBrowserTest {

    static final Path SHOTS = Path.of("target/screenshots");
    static final File CHROMEDRIVER = new File("/usr/bin/chromedriver");
    static final File CHROMIUM = new File("/usr/bin/chromium");

    @TestHTTPResource("/")
    URL base;

    WebDriver driver;
    WebDriverWait wait;

    @BeforeEach
    void browser() throws Exception {
        boolean present = CHROMEDRIVER.canExecute() && CHROMIUM.canExecute();
        if (System.getenv("CI") == null) {
            Assumptions.assumeTrue(present, "Debian chromium and chromium-driver are not installed here");
        }
        assertTrue(present, "CI must install chromium and chromium-driver (.ci/run does)");
        Files.createDirectories(SHOTS);
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM);
        options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps");
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER)
                .usingAnyFreePort().build();
        driver = new ChromeDriver(service, options);
        wait = new WebDriverWait(driver, Duration.ofSeconds(30));
        Admin.ensure();
    }

    @AfterEach
    void close() {
        if (driver != null) driver.quit();
    }

    void shot(String name) throws Exception {
        File f = ((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE);
        Files.copy(f.toPath(), SHOTS.resolve(name + ".png"), StandardCopyOption.REPLACE_EXISTING);
    }

    void open(String path) {
        driver.get(base.toString().replaceAll("/$", "") + path);
    }

    void signIn(String user, String password) {
        open("/login");
        driver.findElement(By.id("user")).sendKeys(user);
        driver.findElement(By.id("password")).sendKeys(password);
        driver.findElement(By.id("submit")).click();
        wait.until(ExpectedConditions.presenceOfElementLocated(By.id("signout")));
    }

    @Test
    void aTechnicianDayInTheBrowser() throws Exception {
        open("/login");
        shot("01-sign-in");
        signIn("admin", Admin.PASSWORD);
        wait.until(ExpectedConditions.titleContains("Dashboard"));
        wait.until(d -> !d.findElement(By.id("uptime")).getText().isBlank());
        shot("02-dashboard");

        // documents: a new collection, an upload with its progress bar, the document listed as indexed
        String col = "ward-" + Long.toHexString(System.nanoTime());
        open("/documents");
        driver.findElement(By.id("collection-name")).sendKeys(col);
        driver.findElement(By.id("create-collection")).click();
        By form = By.cssSelector("form.upload[data-collection='" + col + "']");
        wait.until(ExpectedConditions.presenceOfElementLocated(form));
        Path doc = Files.createTempFile("handbook", ".md");
        Files.writeString(doc, "# Ward handbook\n\nThe infusion pump alarm means the line is occluded: check the clamp first.\n");
        WebElement upload = driver.findElement(form);
        upload.findElement(By.cssSelector(".upload-input")).sendKeys(doc.toAbsolutePath().toString());
        upload.findElement(By.cssSelector(".upload-button")).click();
        wait.until(d -> d.findElement(form).findElement(By.cssSelector(".upload-status")).getText().contains("indexed"));
        shot("03-documents-uploaded");
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.cssSelector("section[data-collection='" + col + "'] table"), "indexed"));
        shot("04-documents");

        // chat: a streamed answer, then a grounded one with citations
        open("/chat");
        driver.findElement(By.id("question")).sendKeys("Once upon a time");
        driver.findElement(By.id("send")).click();
        wait.until(d -> !d.findElement(By.cssSelector("#conversation .assistant")).getText().isBlank()
                && d.findElement(By.id("send")).isEnabled());
        shot("05-chat");
        new org.openqa.selenium.support.ui.Select(driver.findElement(By.id("collections"))).selectByValue(col);
        driver.findElement(By.id("question")).sendKeys("What does the infusion pump alarm mean?");
        driver.findElement(By.id("send")).click();
        wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#citations li a")));
        assertTrue(driver.findElement(By.id("citations")).getText().contains("Ward handbook"));
        shot("06-chat-citations");
        // the conversation is kept server-side: it is there after a reload
        open("/chat");
        wait.until(d -> d.findElements(By.cssSelector("#conversation .msg")).size() >= 4);

        open("/models");
        shot("07-models");
        open("/admin/users");
        shot("08-users-and-keys");
        open("/settings");
        shot("09-settings");

        open("/admin/audit");
        String audit = driver.findElement(By.id("audit-table")).getText();
        for (String a : new String[] {"auth.login", "collection.create", "document.upload", "inference.chat"}) {
            assertTrue(audit.contains(a), "audit log shows " + a);
        }
        driver.findElement(By.id("verify")).click();
        wait.until(ExpectedConditions.textToBePresentInElementLocated(By.id("verification"), "Chain intact"));
        shot("10-audit");

        driver.findElement(By.id("signout")).click();
        wait.until(ExpectedConditions.urlContains("/login"));
        open("/");
        wait.until(ExpectedConditions.urlContains("/login"));
        shot("11-signed-out");
    }

    @Test
    void aTechnicianCannotOpenAdminPages() throws Exception {
        String admin = Admin.login("admin", Admin.PASSWORD);
        String name = "tech" + Long.toHexString(System.nanoTime());
        given().cookie(AuthHandler.COOKIE, admin).formParam("name", name).formParam("role", "technician")
                .formParam("password", "a long enough password").post("/admin/users?_csrf=" + Admin.csrf(admin))
                .then().statusCode(200);
        signIn(name, "a long enough password");
        assertTrue(driver.findElements(By.linkText("Users & keys")).isEmpty(), "no admin link in the menu");
        open("/admin/users");
        assertTrue(driver.findElement(By.tagName("h1")).getText().contains("Forbidden"));
        shot("12-technician-forbidden");
        open("/admin/audit");
        assertTrue(driver.findElement(By.tagName("h1")).getText().contains("Forbidden"));
    }
}
