import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassFileVersion;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeTransform;
import java.lang.classfile.ClassModel;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Build step, run on the packaged application's library folder (target/quarkus-app/lib/main): rewrites the class
 * files older than Java 6 (major version below 50; picocli is compiled for Java 5) as Java 8 class files with stack
 * maps, so the JDK's AOT cache can hold them. The JVM leaves such old classes out of the cache ("Old class has been
 * linked"): every CLI start then loaded picocli from its jar and verified it with the old type-inferring verifier.
 * The code is unchanged (the JDK's class-file API re-emits the same instructions and computes the frames); every
 * rewritten class is checked by the class-file verifier, and a jar with any class that fails is left as it was, as is
 * a signed jar (its signature would no longer match).
 *
 * <p>Usage: {@code java UpgradeOldClassFiles.java DIR}: every *.jar in DIR, in place; a missing DIR (the native
 * profile packages no jars) is not an error.
 */
public class UpgradeOldClassFiles {

    static final int OLDEST_CACHEABLE = 50;
    static final int TARGET = ClassFile.JAVA_8_VERSION;

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: java UpgradeOldClassFiles.java DIR");
            System.exit(2);
        }
        Path dir = Path.of(args[0]);
        if (!Files.isDirectory(dir)) return;
        List<Path> jars = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.jar")) {
            ds.forEach(jars::add);
        }
        Collections.sort(jars);
        URL[] urls = new URL[jars.size()];
        for (int i = 0; i < urls.length; i++) urls[i] = jars.get(i).toUri().toURL();
        // the frames' type merges need every class's supertypes: the folder's jars, then the JDK's own classes
        try (URLClassLoader loader = new URLClassLoader(urls, ClassLoader.getPlatformClassLoader())) {
            ClassHierarchyResolver resolver = ClassHierarchyResolver.ofResourceParsing(loader)
                    .orElse(ClassHierarchyResolver.defaultResolver()).cached();
            ClassFile cf = ClassFile.of(ClassFile.StackMapsOption.GENERATE_STACK_MAPS,
                    ClassFile.ClassHierarchyResolverOption.of(resolver));
            for (Path jar : jars) upgrade(jar, cf);
        }
    }

    static boolean isOld(byte[] classFile) {
        return classFile.length >= 8 && ((classFile[6] & 0xFF) << 8 | classFile[7] & 0xFF) < OLDEST_CACHEABLE;
    }

    static void upgrade(Path jar, ClassFile cf) throws IOException {
        Path tmp = jar.resolveSibling(jar.getFileName() + ".upgrading");
        int upgraded = 0;
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            boolean any = false;
            String signature = null;
            for (ZipEntry e : Collections.list(zip.entries())) {
                if (isSignature(e)) signature = e.getName();
                if (!any && isClass(e)) {
                    try (InputStream in = zip.getInputStream(e)) {
                        any = isOld(in.readNBytes(8));
                    }
                }
            }
            if (!any) return;
            if (signature != null) { // a rewritten class would fail the jar's signature: leave it as it was
                System.out.println("[upgrade-class-files] " + jar.getFileName() + " left as it was: signed (" + signature + ")");
                return;
            }
            ClassTransform toTarget = (builder, element) -> {
                if (element instanceof ClassFileVersion) builder.withVersion(TARGET, 0);
                else builder.with(element);
            };
            // rebuilding each method's code is what makes the API compute its stack map frames
            ClassTransform transform = toTarget.andThen(ClassTransform.transformingMethodBodies(CodeTransform.ACCEPT_ALL));
            try (OutputStream os = Files.newOutputStream(tmp); ZipOutputStream out = new ZipOutputStream(os)) {
                for (ZipEntry e : Collections.list(zip.entries())) {
                    byte[] bytes;
                    try (InputStream in = zip.getInputStream(e)) {
                        bytes = in.readAllBytes();
                    }
                    if (isClass(e) && isOld(bytes)) {
                        ClassModel model = cf.parse(bytes);
                        bytes = cf.transformClass(model, transform);
                        List<VerifyError> errors = cf.verify(bytes);
                        if (!errors.isEmpty()) {
                            System.err.println("[upgrade-class-files] " + jar.getFileName() + " left as it was: " + e.getName()
                                    + " does not verify after the rewrite (" + errors.getFirst().getMessage() + ")");
                            out.close();
                            Files.deleteIfExists(tmp);
                            return;
                        }
                        upgraded++;
                    }
                    ZipEntry copy = new ZipEntry(e.getName());
                    copy.setTime(e.getTime()); // the same timestamps: the build stays reproducible
                    out.putNextEntry(copy);
                    out.write(bytes);
                    out.closeEntry();
                }
            }
        } catch (RuntimeException | IOException e) {
            Files.deleteIfExists(tmp);
            System.err.println("[upgrade-class-files] " + jar.getFileName() + " left as it was: " + e);
            return;
        }
        Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.out.println("[upgrade-class-files] " + jar.getFileName() + ": " + upgraded + " classes rewritten as Java 8 class files");
    }

    static boolean isSignature(ZipEntry e) {
        String n = e.getName().toUpperCase(java.util.Locale.ROOT);
        return n.startsWith("META-INF/") && n.indexOf('/', "META-INF/".length()) < 0
                && (n.endsWith(".SF") || n.endsWith(".RSA") || n.endsWith(".DSA") || n.endsWith(".EC"));
    }

    static boolean isClass(ZipEntry e) {
        return e.getName().endsWith(".class") && !e.getName().startsWith("META-INF/") && !e.isDirectory();
    }
}
