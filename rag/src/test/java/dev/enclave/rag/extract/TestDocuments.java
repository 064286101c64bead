package dev.enclave.rag.extract;

import org.apache.pdfbox.pdmodel.PDDocument;
import org.apache.pdfbox.pdmodel.PDPage;
import org.apache.pdfbox.pdmodel.PDPageContentStream;
import org.apache.pdfbox.pdmodel.encryption.AccessPermission;
import org.apache.pdfbox.pdmodel.encryption.StandardProtectionPolicy;
import org.apache.pdfbox.pdmodel.font.PDType1Font;
import org.apache.pdfbox.pdmodel.font.Standard14Fonts;
import org.apache.poi.xwpf.usermodel.BreakType;
import org.apache.poi.xwpf.usermodel.XWPFDocument;
import org.apache.poi.xwpf.usermodel.XWPFParagraph;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.List;

/** Real PDF and DOCX files made with PDFBox and POI, for the tests. */
public final class TestDocuments {

    private TestDocuments() {
    }

    /** One page per string; each string is written as lines of up to ~90 characters. */
    public static byte[] pdf(List<String> pages, String ownerPassword, String userPassword) throws IOException {
        try (PDDocument doc = new PDDocument(); ByteArrayOutputStream out = new ByteArrayOutputStream()) {
            PDType1Font font = new PDType1Font(Standard14Fonts.FontName.HELVETICA);
            for (String text : pages) {
                PDPage page = new PDPage();
                doc.addPage(page);
                try (PDPageContentStream cs = new PDPageContentStream(doc, page)) {
                    cs.beginText();
                    cs.setFont(font, 11);
                    cs.setLeading(14);
                    cs.newLineAtOffset(50, 740);
                    for (String line : wrap(text, 90)) {
                        cs.showText(line);
                        cs.newLine();
                    }
                    cs.endText();
                }
            }
            if (ownerPassword != null) {
                AccessPermission ap = new AccessPermission();
                StandardProtectionPolicy policy = new StandardProtectionPolicy(ownerPassword, userPassword, ap);
                policy.setEncryptionKeyLength(128);
                doc.protect(policy);
            }
            doc.save(out);
            return out.toByteArray();
        }
    }

    public static byte[] pdf(List<String> pages) throws IOException {
        return pdf(pages, null, null);
    }

    /** Paragraphs; a paragraph starting with "# " becomes a Heading1, "\f" a page break. */
    public static byte[] docx(List<String> paragraphs) throws IOException {
        try (XWPFDocument doc = new XWPFDocument(); ByteArrayOutputStream out = new ByteArrayOutputStream()) {
            for (String p : paragraphs) {
                XWPFParagraph para = doc.createParagraph();
                if (p.equals("\f")) {
                    para.createRun().addBreak(BreakType.PAGE);
                } else if (p.startsWith("# ")) {
                    para.setStyle("Heading1");
                    para.createRun().setText(p.substring(2));
                } else {
                    para.createRun().setText(p);
                }
            }
            doc.write(out);
            return out.toByteArray();
        }
    }

    static List<String> wrap(String text, int width) {
        List<String> lines = new java.util.ArrayList<>();
        StringBuilder line = new StringBuilder();
        for (String w : text.split("\\s+")) {
            if (line.length() + w.length() + 1 > width && !line.isEmpty()) {
                lines.add(line.toString());
                line.setLength(0);
            }
            if (!line.isEmpty()) line.append(' ');
            line.append(w);
        }
        if (!line.isEmpty()) lines.add(line.toString());
        return lines;
    }
}
