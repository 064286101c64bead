package dev.enclave.server.security;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.GeneralSubtree;
import org.bouncycastle.asn1.x509.NameConstraints;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The appliance's own certificate authority, made on first boot: an EC P-256 CA (10 years) and a server
 * certificate it signs (1 year, renewed when less than 30 days remain or the host names change) for
 * {@code localhost}, the loopback addresses, the machine's host name and any names the operator adds. Browsers
 * trust the box once the operator installs {@code ca.pem}; the CA key never leaves {@code tls/} (mode 600).
 */
public final class LocalCertificateAuthority {

    public record Files3(Path caCert, Path serverCert, Path serverKey) {
    }

    private static final SecureRandom RANDOM = new SecureRandom();

    private LocalCertificateAuthority() {
    }

    public static Files3 ensure(Path dir, List<String> extraNames) throws Exception {
        Files.createDirectories(dir);
        Path caCert = dir.resolve("ca.pem"), caKey = dir.resolve("ca-key.pem");
        Path cert = dir.resolve("server.pem"), key = dir.resolve("server-key.pem");
        Set<String> names = new LinkedHashSet<>(List.of("localhost", "127.0.0.1", "::1"));
        try {
            names.add(InetAddress.getLocalHost().getHostName());
        } catch (Exception ignored) {
            // no resolvable host name: loopback names only
        }
        names.addAll(extraNames);

        KeyPair ca;
        X509Certificate caCertificate;
        if (Files.exists(caCert) && Files.exists(caKey)) {
            caCertificate = readCert(caCert);
            ca = new KeyPair(caCertificate.getPublicKey(), readKey(caKey));
            for (String n : names) {
                if (!permits(caCertificate, n)) {
                    throw new IllegalStateException("the local CA (" + caCert + ") may only vouch for local names and "
                            + "private addresses and the names it was made for, not '" + n + "': give the server a "
                            + "certificate of your own (--tls-cert/--tls-key), or remove " + dir + " to make a new CA "
                            + "(browsers must then trust the new ca.pem)");
                }
            }
        } else {
            ca = ecKeyPair();
            // self-signed: subject equals issuer; a random suffix tells boxes' CAs apart
            X500Name self = new X500Name("CN=Enclave local CA " + Long.toHexString(RANDOM.nextLong() >>> 1));
            caCertificate = sign(self, self, ca, ca.getPrivate(), null, Duration.ofDays(3650), true, new ArrayList<>(names));
            writeSecret(caKey, pem(ca.getPrivate()));
            write(caCert, pem(caCertificate));
        }
        boolean renew = true;
        if (Files.exists(cert) && Files.exists(key)) {
            X509Certificate c = readCert(cert);
            boolean fresh = c.getNotAfter().toInstant().isAfter(Instant.now().plus(Duration.ofDays(30)));
            Set<String> have = new LinkedHashSet<>();
            if (c.getSubjectAlternativeNames() != null) for (List<?> san : c.getSubjectAlternativeNames()) have.add(san.get(1).toString());
            renew = !fresh || !have.containsAll(normalize(names));
        }
        if (renew) {
            KeyPair server = ecKeyPair();
            X509Certificate c = sign(new X500Name("CN=" + names.iterator().next()),
                    X500Name.getInstance(caCertificate.getSubjectX500Principal().getEncoded()), server, ca.getPrivate(),
                    caCertificate, Duration.ofDays(365), false, new ArrayList<>(names));
            writeSecret(key, pem(server.getPrivate()));
            write(cert, pem(c) + pem(caCertificate));
        }
        return new Files3(caCert, cert, key);
    }

    private static Set<String> normalize(Set<String> names) {
        Set<String> out = new LinkedHashSet<>();
        for (String n : names) {
            if (isIp(n)) {
                try {
                    out.add(InetAddress.getByName(n).getHostAddress());
                } catch (Exception e) {
                    out.add(n);
                }
            } else {
                out.add(n);
            }
        }
        return out;
    }

    private static boolean isIp(String n) {
        return n.matches("[0-9.]+") || n.contains(":");
    }

    private static KeyPair ecKeyPair() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        return g.generateKeyPair();
    }

    private static X509Certificate sign(X500Name subject, X500Name issuer, KeyPair subjectKeys, PrivateKey issuerKey,
                                        X509Certificate issuerCert, Duration validity, boolean isCa, List<String> names)
            throws Exception {
        Instant now = Instant.now();
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuer, new BigInteger(127, RANDOM),
                Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(validity)), subject, subjectKeys.getPublic());
        JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(isCa));
        b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(subjectKeys.getPublic()));
        if (isCa) {
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            b.addExtension(Extension.nameConstraints, true, constraints(names));
        } else {
            b.addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(issuerCert));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement));
            b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
            List<GeneralName> sans = new ArrayList<>();
            for (String n : names) sans.add(new GeneralName(isIp(n) ? GeneralName.iPAddress : GeneralName.dNSName, n));
            b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(sans.toArray(GeneralName[]::new)));
        }
        ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").build(issuerKey);
        X509CertificateHolder holder = b.build(signer);
        return new JcaX509CertificateConverter().getCertificate(holder);
    }

    /** Local DNS names an appliance may go by, whatever names the operator adds later under them. */
    static final List<String> LOCAL_DOMAINS = List.of("localhost", "local", "lan", "internal", "intranet", "home.arpa");
    /** Loopback, private and link-local address ranges. */
    static final List<String> LOCAL_RANGES = List.of("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
            "169.254.0.0/16", "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10");

    /**
     * What the CA may vouch for: local names and private addresses, and the names it was made for. A trusted
     * ca.pem whose key leaked then cannot be used to impersonate any public site to the operators' browsers.
     */
    static NameConstraints constraints(List<String> names) {
        List<GeneralSubtree> permitted = new ArrayList<>();
        Set<String> dns = new LinkedHashSet<>(LOCAL_DOMAINS);
        Set<String> ips = new LinkedHashSet<>(LOCAL_RANGES);
        for (String n : names) {
            if (isIp(n)) ips.add(n + (n.contains(":") ? "/128" : "/32"));
            else dns.add(n.toLowerCase(java.util.Locale.ROOT));
        }
        for (String d : dns) permitted.add(new GeneralSubtree(new GeneralName(GeneralName.dNSName, d)));
        for (String r : ips) permitted.add(new GeneralSubtree(new GeneralName(GeneralName.iPAddress, r)));
        return new NameConstraints(permitted.toArray(GeneralSubtree[]::new), null);
    }

    /** Whether a CA's name constraints (if any: CAs of earlier versions have none) allow {@code name}. */
    static boolean permits(X509Certificate ca, String name) throws Exception {
        byte[] ext = ca.getExtensionValue(Extension.nameConstraints.getId());
        if (ext == null) return true;
        NameConstraints nc = NameConstraints.getInstance(org.bouncycastle.asn1.ASN1OctetString.getInstance(ext).getOctets());
        if (nc.getPermittedSubtrees() == null) return true;
        boolean ip = isIp(name);
        byte[] addr = ip ? InetAddress.getByName(name).getAddress() : null;
        String dns = name.toLowerCase(java.util.Locale.ROOT);
        for (GeneralSubtree t : nc.getPermittedSubtrees()) {
            GeneralName g = t.getBase();
            if (!ip && g.getTagNo() == GeneralName.dNSName) {
                String d = g.getName().toString().toLowerCase(java.util.Locale.ROOT);
                if (dns.equals(d) || dns.endsWith("." + d)) return true;
            } else if (ip && g.getTagNo() == GeneralName.iPAddress) {
                byte[] b = org.bouncycastle.asn1.ASN1OctetString.getInstance(g.getName()).getOctets();
                int len = b.length / 2;
                if (len != addr.length) continue;
                boolean in = true;
                for (int i = 0; i < len && in; i++) in = (addr[i] & b[len + i]) == (b[i] & b[len + i]);
                if (in) return true;
            }
        }
        return false;
    }

    private static String pem(Object o) throws IOException {
        StringWriter w = new StringWriter();
        try (JcaPEMWriter pw = new JcaPEMWriter(w)) {
            pw.writeObject(o instanceof PrivateKey k ? new org.bouncycastle.util.io.pem.PemObject("PRIVATE KEY", k.getEncoded()) : o);
        }
        return w.toString();
    }

    static X509Certificate readCert(Path p) throws Exception {
        try (var in = Files.newInputStream(p)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    private static PrivateKey readKey(Path p) throws Exception {
        String text = Files.readString(p, StandardCharsets.US_ASCII);
        String b64 = text.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(b64)));
    }

    private static void write(Path p, String s) throws IOException {
        Path tmp = p.resolveSibling(p.getFileName() + ".tmp");
        Files.writeString(tmp, s, StandardCharsets.US_ASCII);
        Files.move(tmp, p, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeSecret(Path p, String s) throws IOException {
        Path tmp = p.resolveSibling(p.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, s, StandardCharsets.US_ASCII);
        Files.move(tmp, p, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
