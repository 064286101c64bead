package dev.enclave.rag.store;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.codecs.KnnVectorsFormat;
import org.apache.lucene.codecs.lucene103.Lucene103Codec;
import org.apache.lucene.codecs.lucene99.Lucene99HnswScalarQuantizedVectorsFormat;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.document.TextField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.KnnFloatVectorQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.SearcherManager;
import org.apache.lucene.search.TermInSetQuery;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.search.similarities.BM25Similarity;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.BytesRef;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * The Lucene side of the store: one Lucene document per chunk with its text analysed by EnglishAnalyzer for
 * BM25 and its embedding in an HNSW graph with int8 scalar quantization. Only ids are stored; the text and
 * everything a citation needs live in the {@link Catalog}.
 */
public final class ChunkIndex implements AutoCloseable {

    static final String CHUNK_ID = "chunk_id";
    static final String DOC_ID = "doc_id";
    static final String COLLECTION = "collection";
    static final String TEXT = "text";
    static final String VECTOR = "vector";

    /** Anserini's BM25 settings, which reproduce the published BEIR baselines. */
    public static final float K1 = 0.9f;
    public static final float B = 0.4f;

    public record Hit(long chunkId, long documentId, float score) {
    }

    private final Analyzer analyzer = new EnglishAnalyzer();
    private final FSDirectory directory;
    private volatile IndexWriter writer;
    private volatile SearcherManager searchers;
    private final BM25Similarity similarity = new BM25Similarity(K1, B);

    public ChunkIndex(Path dir) throws IOException {
        directory = FSDirectory.open(dir);
        writer = new IndexWriter(directory, config());
        searchers = new SearcherManager(writer, null);
    }

    /**
     * False after a write failed so badly (a full disk during a flush, say) that Lucene closed its writer: nothing
     * can be written until {@link #reopen}.
     */
    public boolean writable() {
        return writer.isOpen() && writer.getTragicException() == null;
    }

    /**
     * A new writer on the last commit (what was not committed is dropped; the catalog still has it as pending and
     * replays it). Searches go on meanwhile on the reader they hold.
     */
    public synchronized void reopen() throws IOException {
        SearcherManager oldSearchers = searchers;
        IndexWriter old = writer;
        try {
            if (old.isOpen()) old.rollback();
        } catch (IOException | RuntimeException ignored) {
            // it failed already; the new writer starts from the last commit either way
        }
        writer = new IndexWriter(directory, config());
        searchers = new SearcherManager(writer, null);
        try {
            oldSearchers.close();
        } catch (IOException | RuntimeException ignored) {
            // readers of a closed writer
        }
    }

    private IndexWriterConfig config() {
        IndexWriterConfig config = new IndexWriterConfig(analyzer);
        config.setSimilarity(similarity);
        config.setRAMBufferSizeMB(64);
        config.setCodec(new Lucene103Codec() {
            private final KnnVectorsFormat quantized = new Lucene99HnswScalarQuantizedVectorsFormat();

            @Override
            public KnnVectorsFormat getKnnVectorsFormatForField(String field) {
                return quantized;
            }
        });
        config.setCommitOnClose(false); // only explicit commits count: they carry the catalog's promises
        return config;
    }

    /** Replaces every chunk of {@code documentId} atomically (delete + add in one operation). */
    public void put(long documentId, long collectionId, List<Catalog.ChunkRow> chunks) throws IOException {
        List<Document> docs = new ArrayList<>(chunks.size());
        for (Catalog.ChunkRow c : chunks) {
            Document d = new Document();
            d.add(new StringField(CHUNK_ID, Long.toString(c.id()), Field.Store.YES));
            d.add(new StringField(DOC_ID, Long.toString(documentId), Field.Store.YES));
            d.add(new StringField(COLLECTION, Long.toString(collectionId), Field.Store.NO));
            String indexed = c.heading().isEmpty() ? c.text() : c.heading() + "\n" + c.text();
            d.add(new TextField(TEXT, indexed, Field.Store.NO));
            if (c.embedding() != null) {
                d.add(new KnnFloatVectorField(VECTOR, c.embedding(), VectorSimilarityFunction.DOT_PRODUCT));
            }
            docs.add(d);
        }
        writer.updateDocuments(new Term(DOC_ID, Long.toString(documentId)), docs);
    }

    public void delete(long documentId) throws IOException {
        writer.deleteDocuments(new Term(DOC_ID, Long.toString(documentId)));
    }

    public void deleteCollection(long collectionId) throws IOException {
        writer.deleteDocuments(new Term(COLLECTION, Long.toString(collectionId)));
    }

    /** Durable point: everything put or deleted before is on disk when this returns. */
    public void commit(Map<String, String> userData) throws IOException {
        writer.setLiveCommitData(userData.entrySet());
        writer.commit();
        searchers.maybeRefreshBlocking();
    }

    public Map<String, String> lastCommitData() throws IOException {
        if (!DirectoryReader.indexExists(directory)) return Map.of();
        try (DirectoryReader r = DirectoryReader.open(directory)) {
            return r.getIndexCommit().getUserData();
        }
    }

    public List<Hit> bm25(String query, Collection<Long> collections, int k) throws IOException {
        Query parsed = keywordQuery(query);
        if (parsed == null) return List.of();
        return search(filtered(parsed, collections), k);
    }

    public List<Hit> knn(float[] vector, Collection<Long> collections, int k) throws IOException {
        Query filter = collectionFilter(collections);
        return search(new KnnFloatVectorQuery(VECTOR, vector, k, filter), k);
    }

    /** Number of chunks indexed for one document, as a searcher sees them now (used by consistency checks). */
    public int countChunks(long documentId) throws IOException {
        searchers.maybeRefreshBlocking();
        IndexSearcher s = searchers.acquire();
        try {
            return s.count(new TermQuery(new Term(DOC_ID, Long.toString(documentId))));
        } finally {
            searchers.release(s);
        }
    }

    public int numDocs() throws IOException {
        searchers.maybeRefreshBlocking();
        IndexSearcher s = searchers.acquire();
        try {
            return s.getIndexReader().numDocs();
        } finally {
            searchers.release(s);
        }
    }

    /** Bag of analysed terms, OR-ed: the way BEIR BM25 baselines query, and safe against query syntax. */
    private Query keywordQuery(String text) throws IOException {
        BooleanQuery.Builder b = new BooleanQuery.Builder();
        int n = 0;
        try (var ts = analyzer.tokenStream(TEXT, text)) {
            var term = ts.addAttribute(org.apache.lucene.analysis.tokenattributes.CharTermAttribute.class);
            ts.reset();
            while (ts.incrementToken()) {
                if (n++ >= 1024) break; // BooleanQuery's clause limit; a longer query adds nothing useful
                b.add(new TermQuery(new Term(TEXT, term.toString())), BooleanClause.Occur.SHOULD);
            }
            ts.end();
        }
        return n == 0 ? null : b.build();
    }

    private static Query filtered(Query q, Collection<Long> collections) {
        Query filter = collectionFilter(collections);
        if (filter == null) return q;
        return new BooleanQuery.Builder()
                .add(q, BooleanClause.Occur.MUST)
                .add(filter, BooleanClause.Occur.FILTER)
                .build();
    }

    private static Query collectionFilter(Collection<Long> collections) {
        if (collections == null) return null;
        List<BytesRef> terms = new ArrayList<>();
        for (long c : collections) terms.add(new BytesRef(Long.toString(c)));
        return new TermInSetQuery(COLLECTION, terms);
    }

    private List<Hit> search(Query q, int k) throws IOException {
        IndexSearcher s = searchers.acquire();
        try {
            s.setSimilarity(similarity);
            TopDocs top = s.search(q, Math.max(1, k));
            List<Hit> hits = new ArrayList<>(top.scoreDocs.length);
            var stored = s.storedFields();
            for (ScoreDoc sd : top.scoreDocs) {
                Document d = stored.document(sd.doc);
                hits.add(new Hit(Long.parseLong(d.get(CHUNK_ID)), Long.parseLong(d.get(DOC_ID)), sd.score));
            }
            return hits;
        } finally {
            searchers.release(s);
        }
    }

    @Override
    public void close() throws IOException {
        searchers.close();
        writer.rollback(); // drop anything not committed; commits are the only durable state
        directory.close();
        analyzer.close();
    }
}
