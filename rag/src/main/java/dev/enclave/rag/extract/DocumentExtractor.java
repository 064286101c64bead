package dev.enclave.rag.extract;

import org.apache.pdfbox.Loader;
import org.apache.pdfbox.pdmodel.PDDocument;
import org.apache.pdfbox.pdmodel.encryption.InvalidPasswordException;
import org.apache.pdfbox.text.PDFTextStripper;
import org.apache.poi.xwpf.usermodel.IBodyElement;
import org.apache.poi.xwpf.usermodel.XWPFDocument;
import org.apache.poi.xwpf.usermodel.XWPFParagraph;
import org.apache.poi.xwpf.usermodel.XWPFRun;
import org.apache.poi.xwpf.usermodel.XWPFTable;
import org.jsoup.Jsoup;
import org.jsoup.nodes.Element;
import org.jsoup.nodes.Node;
import org.jsoup.nodes.TextNode;
import org.jsoup.select.NodeVisitor;
import org.openxmlformats.schemas.wordprocessingml.x2006.main.CTBr;
import org.openxmlformats.schemas.wordprocessingml.x2006.main.STBrType;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * Reads PDF (PDFBox, one page at a time so page numbers are kept), DOCX (POI: heading styles, explicit page
 * breaks), HTML (jsoup: title, headings, block structure), Markdown and plain text. The type is decided by the
 * bytes first and the file name second. Every failure is an {@link ExtractionException} with a reason; nothing
 * else escapes, so one bad file never stops a crawl.
 */
public final class DocumentExtractor {

    public static final long DEFAULT_MAX_BYTES = 256L << 20;
    public static final long DEFAULT_MAX_CHARS = 64L << 20;

    private static final Set<String> TEXT_EXTENSIONS = Set.of("txt", "text", "log", "csv", "tsv", "json", "xml",
            "yaml", "yml", "ini", "cfg", "conf", "rst", "tex");

    private final long maxBytes;
    private final long maxChars;

    public DocumentExtractor() {
        this(DEFAULT_MAX_BYTES, DEFAULT_MAX_CHARS);
    }

    public DocumentExtractor(long maxBytes, long maxChars) {
        this.maxBytes = maxBytes;
        this.maxChars = maxChars;
    }

    public ExtractedDocument extract(Path file) throws ExtractionException {
        long size;
        try {
            if (!Files.isRegularFile(file)) throw new ExtractionException("not a regular file");
            size = Files.size(file);
        } catch (IOException e) {
            throw new ExtractionException("cannot read: " + e.getMessage(), e);
        }
        if (size > maxBytes) {
            throw new ExtractionException("file is " + human(size) + ", over the " + human(maxBytes) + " limit");
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ExtractionException("cannot read: " + e.getMessage(), e);
        }
        return extract(file.getFileName().toString(), bytes);
    }

    public ExtractedDocument extract(String name, byte[] bytes) throws ExtractionException {
        if (bytes.length > maxBytes) {
            throw new ExtractionException("file is " + human(bytes.length) + ", over the " + human(maxBytes) + " limit");
        }
        String type = detect(name, bytes);
        try {
            return switch (type) {
                case "application/pdf" -> pdf(name, bytes);
                case "application/vnd.openxmlformats-officedocument.wordprocessingml.document" -> docx(name, bytes);
                case "text/html" -> html(name, bytes);
                case "text/markdown" -> markdown(name, bytes);
                case "text/plain" -> plain(name, bytes);
                default -> throw new ExtractionException("unsupported file type (" + type + ")");
            };
        } catch (ExtractionException e) {
            throw e;
        } catch (OutOfMemoryError e) {
            throw new ExtractionException("document too large to extract in memory", e);
        } catch (Exception | StackOverflowError e) {
            throw new ExtractionException("corrupt or unreadable " + type + ": " + message(e), e);
        }
    }

    /** Media type from magic bytes, then extension; "application/octet-stream" when neither says. */
    public static String detect(String name, byte[] b) {
        String ext = extension(name);
        if (startsWith(b, "%PDF-")) return "application/pdf";
        if (b.length >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) {
            return isDocx(b) ? "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                    : "application/zip";
        }
        if (ext.equals("pdf")) return "application/pdf"; // named .pdf but no header: the PDF reader explains
        if (ext.equals("docx")) return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        if (!isText(b)) return "application/octet-stream";
        String head = new String(b, 0, Math.min(b.length, 512), StandardCharsets.UTF_8).stripLeading()
                .toLowerCase(Locale.ROOT);
        if (ext.equals("html") || ext.equals("htm") || ext.equals("xhtml") || head.startsWith("<!doctype html")
                || head.startsWith("<html")) {
            return "text/html";
        }
        if (ext.equals("md") || ext.equals("markdown")) return "text/markdown";
        if (ext.isEmpty() || TEXT_EXTENSIONS.contains(ext)) return "text/plain";
        return "text/plain";
    }

    private static boolean isDocx(byte[] b) {
        try (ZipInputStream zip = new ZipInputStream(new ByteArrayInputStream(b))) {
            ZipEntry e;
            int n = 0;
            while ((e = zip.getNextEntry()) != null && n++ < 64) {
                if (e.getName().equals("word/document.xml")) return true;
            }
        } catch (IOException ignored) {
            // not a readable zip
        }
        return false;
    }

    private static boolean isText(byte[] b) {
        int n = Math.min(b.length, 8192);
        for (int i = 0; i < n; i++) if (b[i] == 0) return false;
        try {
            StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(b, 0, n - trailingPartial(b, n)));
            return true;
        } catch (CharacterCodingException e) {
            return false;
        }
    }

    /** Bytes of a UTF-8 sequence cut off by the sniffing window. */
    private static int trailingPartial(byte[] b, int n) {
        for (int k = 1; k <= 3 && k <= n; k++) {
            int c = b[n - k] & 0xFF;
            if ((c & 0xC0) == 0xC0) return k; // a lead byte within the last 3
            if ((c & 0x80) == 0) return 0;
        }
        return 0;
    }

    private ExtractedDocument pdf(String name, byte[] bytes) throws IOException, ExtractionException {
        try (PDDocument doc = Loader.loadPDF(bytes)) {
            if (doc.isEncrypted() && !doc.getCurrentAccessPermission().canExtractContent()) {
                throw new ExtractionException("PDF is encrypted and forbids text extraction");
            }
            TextBuilder out = new TextBuilder(maxChars);
            PDFTextStripper stripper = new PDFTextStripper();
            stripper.setSortByPosition(true);
            int pages = doc.getNumberOfPages();
            for (int p = 1; p <= pages; p++) {
                out.startPage(p);
                stripper.setStartPage(p);
                stripper.setEndPage(p);
                out.append(stripper.getText(doc).strip());
                out.paragraphBreak();
            }
            String title = doc.getDocumentInformation() == null ? null : doc.getDocumentInformation().getTitle();
            return out.build(title == null || title.isBlank() ? name : title, "application/pdf");
        } catch (InvalidPasswordException e) {
            throw new ExtractionException("PDF is encrypted (password protected)", e);
        }
    }

    private ExtractedDocument docx(String name, byte[] bytes) throws IOException, ExtractionException {
        // POI's ZipSecureFile refuses entries that inflate suspiciously (zip bombs) with an IOException
        try (XWPFDocument doc = new XWPFDocument(new ByteArrayInputStream(bytes))) {
            TextBuilder out = new TextBuilder(maxChars);
            int page = 1;
            out.startPage(page);
            for (IBodyElement el : doc.getBodyElements()) {
                if (el instanceof XWPFParagraph p) {
                    if (p.isPageBreak()) out.startPage(++page);
                    int level = headingLevel(p.getStyleID(), doc.getStyles() == null ? null : styleName(doc, p.getStyleID()));
                    if (level > 0) {
                        out.heading(level, p.getText());
                    } else {
                        for (XWPFRun r : p.getRuns()) {
                            for (CTBr br : r.getCTR().getBrList()) {
                                if (br.getType() == STBrType.PAGE) out.startPage(++page);
                            }
                            String t = r.text();
                            if (t != null) out.append(t);
                        }
                        out.paragraphBreak();
                    }
                } else if (el instanceof XWPFTable t) {
                    out.append(t.getText());
                    out.paragraphBreak();
                }
            }
            String title = doc.getProperties().getCoreProperties().getTitle();
            return out.build(title == null || title.isBlank() ? name : title,
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
        }
    }

    private static String styleName(XWPFDocument doc, String styleId) {
        if (styleId == null) return null;
        var s = doc.getStyles().getStyle(styleId);
        return s == null ? null : s.getName();
    }

    private static int headingLevel(String styleId, String styleName) {
        for (String s : new String[] {styleId, styleName}) {
            if (s == null) continue;
            String n = s.toLowerCase(Locale.ROOT).replace(" ", "");
            if (n.equals("title")) return 1;
            if (n.startsWith("heading") && n.length() > 7) {
                try {
                    return Math.max(1, Integer.parseInt(n.substring(7)));
                } catch (NumberFormatException ignored) {
                    // "headingchar" and the like
                }
            }
        }
        return 0;
    }

    private ExtractedDocument html(String name, byte[] bytes) throws IOException, ExtractionException {
        var doc = Jsoup.parse(new ByteArrayInputStream(bytes), null, "", org.jsoup.parser.Parser.htmlParser());
        doc.select("script, style, noscript, template, svg").remove();
        TextBuilder out = new TextBuilder(maxChars);
        ExtractionException[] failure = new ExtractionException[1];
        doc.body().traverse(new NodeVisitor() {
            @Override
            public void head(Node node, int depth) {
                if (failure[0] != null) return;
                try {
                    if (node instanceof Element e) {
                        String tag = e.normalName();
                        if (tag.length() == 2 && tag.charAt(0) == 'h' && Character.isDigit(tag.charAt(1))) {
                            out.heading(tag.charAt(1) - '0', e.text());
                        } else if (e.isBlock() || tag.equals("br")) {
                            out.paragraphBreak();
                        }
                    } else if (node instanceof TextNode t && !insideHeading(t)) {
                        String s = t.text();
                        if (!s.isBlank()) out.append(s);
                    }
                } catch (ExtractionException ex) {
                    failure[0] = ex;
                }
            }

            @Override
            public void tail(Node node, int depth) {
            }
        });
        if (failure[0] != null) throw failure[0];
        String title = doc.title();
        return out.build(title.isBlank() ? name : title, "text/html");
    }

    private static boolean insideHeading(Node n) {
        for (Node p = n.parentNode(); p != null; p = p.parentNode()) {
            if (p instanceof Element e) {
                String tag = e.normalName();
                if (tag.length() == 2 && tag.charAt(0) == 'h' && Character.isDigit(tag.charAt(1))) return true;
            }
        }
        return false;
    }

    private ExtractedDocument markdown(String name, byte[] bytes) throws ExtractionException {
        String s = decode(bytes);
        TextBuilder out = new TextBuilder(maxChars);
        out.startPage(1);
        String title = null;
        boolean fenced = false;
        for (String line : s.split("\n", -1)) {
            String l = line.stripTrailing();
            if (l.startsWith("```")) fenced = !fenced;
            int level = 0;
            if (!fenced) while (level < l.length() && level < 6 && l.charAt(level) == '#') level++;
            if (level > 0 && level < l.length() && l.charAt(level) == ' ') {
                String h = l.substring(level + 1).strip();
                if (title == null && level == 1) title = h;
                out.heading(level, h);
            } else {
                out.append(l);
                out.append("\n");
            }
        }
        return out.build(title == null ? name : title, "text/markdown");
    }

    private ExtractedDocument plain(String name, byte[] bytes) throws ExtractionException {
        TextBuilder out = new TextBuilder(maxChars);
        out.startPage(1);
        String s = decode(bytes);
        // form feeds separate pages in text exports (pdftotext, printers)
        String[] pages = s.split("\f", -1);
        for (int i = 0; i < pages.length; i++) {
            if (i > 0) out.startPage(i + 1);
            out.append(pages[i]);
        }
        return out.build(name, "text/plain");
    }

    private static String decode(byte[] bytes) {
        String s = new String(bytes, StandardCharsets.UTF_8);
        if (!s.isEmpty() && s.charAt(0) == '\uFEFF') s = s.substring(1);
        return s.replace("\r\n", "\n");
    }

    static String extension(String name) {
        int dot = name.lastIndexOf('.');
        return dot < 0 ? "" : name.substring(dot + 1).toLowerCase(Locale.ROOT);
    }

    private static boolean startsWith(byte[] b, String magic) {
        if (b.length < magic.length()) return false;
        for (int i = 0; i < magic.length(); i++) if (b[i] != magic.charAt(i)) return false;
        return true;
    }

    private static String message(Throwable e) {
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.length() > 300 ? m.substring(0, 300) + "…" : m;
    }

    public static String human(long bytes) {
        if (bytes >= 1L << 30) return String.format(Locale.ROOT, "%.1f GB", bytes / (double) (1L << 30));
        if (bytes >= 1L << 20) return String.format(Locale.ROOT, "%.1f MB", bytes / (double) (1L << 20));
        if (bytes >= 1L << 10) return String.format(Locale.ROOT, "%.1f KB", bytes / 1024.0);
        return bytes + " B";
    }
}
