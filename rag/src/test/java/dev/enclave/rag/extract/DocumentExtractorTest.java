package dev.enclave.rag.extract;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.*;

class DocumentExtractorTest {

    final DocumentExtractor extractor = new DocumentExtractor();

    @Test
    void pdfKeepsPageNumbers() throws Exception {
        byte[] pdf = TestDocuments.pdf(List.of(
                "Ventilator checks are done every four hours on the ward.",
                "Oxygen cylinders are stored in the locked room next to the pharmacy.",
                "Defibrillator pads expire after two years."));
        ExtractedDocument d = extractor.extract("manual.pdf", pdf);
        assertEquals("application/pdf", d.mediaType());
        assertEquals(3, d.pages().size());
        int oxygen = d.text().indexOf("Oxygen cylinders");
        int pads = d.text().indexOf("Defibrillator pads");
        assertTrue(oxygen > 0 && pads > oxygen, d.text());
        assertEquals(2, d.pageAt(oxygen));
        assertEquals(3, d.pageAt(pads));
        assertEquals(1, d.pageAt(0));
    }

    @Test
    void docxKeepsHeadingsAndPageBreaks() throws Exception {
        byte[] docx = TestDocuments.docx(List.of("# Admission", "Patients are registered at the front desk.",
                "\f", "# Discharge", "Discharge letters are signed by the attending physician."));
        ExtractedDocument d = extractor.extract("policy.docx", docx);
        assertEquals(List.of("Admission", "Discharge"), d.headings().stream().map(ExtractedDocument.Heading::text).toList());
        int letters = d.text().indexOf("Discharge letters");
        assertEquals("Discharge", d.headingAt(letters));
        assertEquals(2, d.pageAt(letters));
        assertEquals(1, d.pageAt(d.text().indexOf("front desk")));
    }

    @Test
    void htmlDropsScriptsAndKeepsStructure() throws Exception {
        String html = "<!doctype html><html><head><title>Sterilisation</title><script>var secret=1;</script></head>"
                + "<body><h1>Autoclave</h1><p>Run the autoclave at 134 degrees.</p><ul><li>Check seals</li>"
                + "<li>Log the cycle</li></ul></body></html>";
        ExtractedDocument d = extractor.extract("page.html", html.getBytes(StandardCharsets.UTF_8));
        assertEquals("Sterilisation", d.title());
        assertFalse(d.text().contains("secret"));
        assertTrue(d.text().contains("Run the autoclave at 134 degrees."));
        assertTrue(d.text().contains("Check seals\n\nLog the cycle"), d.text());
        assertEquals("Autoclave", d.headingAt(d.text().indexOf("Run the")));
    }

    @Test
    void markdownHeadingsAndTextPages() throws Exception {
        ExtractedDocument md = extractor.extract("notes.md",
                "# Title\n\nIntro.\n\n## Part two\n\nBody text.\n```\n# not a heading\n```\n".getBytes(StandardCharsets.UTF_8));
        assertEquals("Title", md.title());
        assertEquals(2, md.headings().size());
        assertEquals("Part two", md.headingAt(md.text().indexOf("Body")));
        ExtractedDocument txt = extractor.extract("export.txt", "page one\fpage two".getBytes(StandardCharsets.UTF_8));
        assertEquals(2, txt.pageAt(txt.text().indexOf("page two")));
    }

    @Test
    void hostileFilesFailWithAReason() throws Exception {
        byte[] encrypted = TestDocuments.pdf(List.of("classified"), "owner", "user-secret");
        ExtractionException e = assertThrows(ExtractionException.class, () -> extractor.extract("secret.pdf", encrypted));
        assertTrue(e.getMessage().contains("encrypted"), e.getMessage());

        byte[] pdf = TestDocuments.pdf(List.of("hello"));
        byte[] truncated = java.util.Arrays.copyOf(pdf, pdf.length / 3);
        e = assertThrows(ExtractionException.class, () -> extractor.extract("broken.pdf", truncated));
        assertTrue(e.getMessage().contains("corrupt") || e.getMessage().contains("no text"), e.getMessage());

        byte[] binary = new byte[4096];
        new Random(1).nextBytes(binary);
        binary[0] = 0;
        e = assertThrows(ExtractionException.class, () -> extractor.extract("blob.bin", binary));
        assertTrue(e.getMessage().contains("unsupported"), e.getMessage());

        DocumentExtractor small = new DocumentExtractor(1024, 1 << 20);
        e = assertThrows(ExtractionException.class, () -> small.extract("big.txt", new byte[4096]));
        assertTrue(e.getMessage().contains("over the 1.0 KB limit"), e.getMessage());
    }

    @Test
    void zipBombDocxIsRefused() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
            zip.putNextEntry(new ZipEntry("[Content_Types].xml"));
            zip.write("<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>".getBytes());
            zip.putNextEntry(new ZipEntry("word/document.xml"));
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < 200; i++) zip.write(zeros); // 200 MB of zeros compress to ~200 KB
            zip.closeEntry();
        }
        ExtractionException e = assertThrows(ExtractionException.class,
                () -> extractor.extract("bomb.docx", bytes.toByteArray()));
        assertNotNull(e.getMessage());
    }

    /** Random corruption of real files: only ExtractionException may come out, never anything else. */
    @Test
    void fuzzedFilesNeverEscapeAsOtherExceptions() throws Exception {
        List<byte[]> seeds = List.of(
                TestDocuments.pdf(List.of("Fuzzing the PDF reader with flipped bytes.", "Second page.")),
                TestDocuments.docx(List.of("# Heading", "Paragraph of text.", "\f", "More.")),
                "<html><body><h2>x</h2><p>y</p></body></html>".getBytes(StandardCharsets.UTF_8));
        String[] names = {"f.pdf", "f.docx", "f.html"};
        Random r = new Random(42);
        int failures = 0;
        for (int round = 0; round < 300; round++) {
            int s = round % seeds.size();
            byte[] b = seeds.get(s).clone();
            int flips = 1 + r.nextInt(8);
            for (int i = 0; i < flips; i++) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
            if (r.nextInt(4) == 0) b = java.util.Arrays.copyOf(b, r.nextInt(b.length));
            try {
                extractor.extract(names[s], b);
            } catch (ExtractionException expected) {
                failures++;
            }
        }
        assertTrue(failures > 0, "some corruptions must be detected");
    }
}
