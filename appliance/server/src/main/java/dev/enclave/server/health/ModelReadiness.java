package dev.enclave.server.health;

import dev.enclave.server.model.ModelService;
import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready once the model is loaded; reports which one. */
@Readiness
@ApplicationScoped
public class ModelReadiness implements HealthCheck {

    private final ModelService models;

    public ModelReadiness(ModelService models) {
        this.models = models;
    }

    @Override
    public HealthCheckResponse call() {
        return HealthCheckResponse.named("model")
                .withData("id", models.modelId())
                .withData("architecture", models.model().config().architecture())
                .up()
                .build();
    }
}
