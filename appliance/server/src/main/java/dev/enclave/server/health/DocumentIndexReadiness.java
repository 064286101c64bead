package dev.enclave.server.health;

import dev.enclave.server.rag.RagService;
import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/**
 * Not ready while the document index cannot be written (a full disk closed Lucene's writer): each check tries to
 * recover it, so readiness comes back by itself once there is space again. An index not opened yet is no problem.
 */
@Readiness
@ApplicationScoped
public class DocumentIndexReadiness implements HealthCheck {

    private final RagService rag;

    public DocumentIndexReadiness(RagService rag) {
        this.rag = rag;
    }

    @Override
    public HealthCheckResponse call() {
        var b = HealthCheckResponse.named("document-index");
        String problem = rag.writeProblem();
        return problem == null ? b.up().build() : b.down().withData("error", problem).build();
    }
}
