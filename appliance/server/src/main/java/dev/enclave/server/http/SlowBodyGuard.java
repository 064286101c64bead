package dev.enclave.server.http;

import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Closes a connection whose request body arrives slower than {@code enclave.http.min-body-bytes-per-second},
 * judged every {@code enclave.http.body-check-seconds}: a client trickling a body (slowloris' second act) would
 * otherwise hold a connection and a worker for as long as it likes. Runs first, before any body is read.
 */
@ApplicationScoped
public class SlowBodyGuard {

    private static final Logger LOG = Logger.getLogger(SlowBodyGuard.class);

    private final long minBytesPerCheck;
    private final long intervalMillis;

    public SlowBodyGuard(@ConfigProperty(name = "enclave.http.min-body-bytes-per-second", defaultValue = "1024") long minRate,
                         @ConfigProperty(name = "enclave.http.body-check-seconds", defaultValue = "10") long seconds) {
        this.intervalMillis = Math.max(1, seconds) * 1000;
        this.minBytesPerCheck = Math.max(1, minRate) * Math.max(1, seconds);
    }

    void register(@Observes Router router) {
        router.route().order(-2000).handler(this::guard);
    }

    private void guard(RoutingContext ctx) {
        if (!ctx.request().isEnded()) {
            long[] last = {ctx.request().bytesRead()};
            var vertx = ctx.vertx();
            long timer = vertx.setPeriodic(intervalMillis, id -> {
                if (ctx.request().isEnded() || ctx.response().ended() || ctx.response().closed()) {
                    vertx.cancelTimer(id);
                    return;
                }
                long now = ctx.request().bytesRead();
                if (now - last[0] < minBytesPerCheck) {
                    vertx.cancelTimer(id);
                    LOG.infof("closing a connection from %s: its request body arrives too slowly (%d bytes in %d s)",
                            ctx.request().remoteAddress(), now - last[0], intervalMillis / 1000);
                    ctx.request().connection().close();
                }
                last[0] = now;
            });
            ctx.addEndHandler(v -> vertx.cancelTimer(timer));
        }
        ctx.next();
    }
}
