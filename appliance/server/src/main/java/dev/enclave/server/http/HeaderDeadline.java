package dev.enclave.server.http;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.quarkus.runtime.annotations.RegisterForReflection;
import io.quarkus.vertx.http.HttpServerStart;
import io.quarkus.vertx.http.HttpsServerStart;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.impl.VertxInternal;
import io.vertx.core.net.impl.ConnectionBase;
import io.vertx.core.net.impl.TCPServerBase;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.event.ObservesAsync;
import java.lang.reflect.Field;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Closes a connection that has not completed a request head within {@code enclave.http.header-timeout-seconds} of
 * opening, or of the first byte it sends when no request on it is in flight: slowloris' first act, headers trickled a
 * byte at a time, which Vert.x's idle timeouts cannot see because every byte counts as activity. A keep-alive
 * connection that sends nothing between requests is left to the idle timeout.
 *
 * <p>Vert.x offers no hook before a request head is parsed and Quarkus keeps the connection handler for its own
 * connection cap, so this adds a handler to the listening Netty channel: each accepted connection gets a timer on its
 * event loop, which a router filter (running once a head has been parsed) stops. Being in front of TLS it needs no
 * parsing: what counts is a head the HTTP decoder accepted. The listening channel is a private field of Vert.x's
 * server, read once at start (registered for reflection for the native image).
 */
@ApplicationScoped
@RegisterForReflection(targets = TCPServerBase.class, fields = true, methods = false)
public class HeaderDeadline {

    private static final Logger LOG = Logger.getLogger(HeaderDeadline.class);
    private static final String HANDLER = "enclave-header-deadline";

    private final long timeoutMillis;
    private final Vertx vertx;
    private final AcceptHook acceptHook = new AcceptHook();

    public HeaderDeadline(@ConfigProperty(name = "enclave.http.header-timeout-seconds", defaultValue = "30") long seconds,
                          Vertx vertx) {
        this.timeoutMillis = Math.max(1, seconds) * 1000;
        this.vertx = vertx;
    }

    void onHttp(@ObservesAsync HttpServerStart started) {
        hookListeners();
    }

    void onHttps(@ObservesAsync HttpsServerStart started) {
        hookListeners();
    }

    void register(@Observes Router router) {
        router.route().order(-3000).handler(this::headArrived);
    }

    /** Adds the accept hook to every listening HTTP channel that does not have it yet; returns how many have it. */
    synchronized int hookListeners() {
        int hooked = 0;
        for (TCPServerBase server : ((VertxInternal) vertx).sharedHttpServers().values()) {
            Channel listening = listeningChannel(server);
            if (listening == null) {
                continue;
            }
            if (listening.pipeline().get(HANDLER) == null) {
                listening.pipeline().addFirst(HANDLER, acceptHook);
            }
            hooked++;
        }
        return hooked;
    }

    private static Channel listeningChannel(TCPServerBase server) {
        try {
            Field f = TCPServerBase.class.getDeclaredField("bindFuture");
            f.setAccessible(true);
            Future<?> bound = (Future<?>) f.get(server);
            return bound != null && bound.succeeded() && bound.result() instanceof Channel c ? c : null;
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.warnf("no header deadline: this Vert.x keeps its listening channel elsewhere (%s)", e.toString());
            return null;
        }
    }

    private void headArrived(RoutingContext ctx) {
        if (ctx.request().connection() instanceof ConnectionBase conn
                && conn.channel().pipeline().get(HANDLER) instanceof ConnectionTimer timer) {
            timer.requestStarted();
            ctx.addEndHandler(v -> timer.requestEnded());
        }
        ctx.next();
    }

    /** On the listening channel: every accepted connection gets its own timer, ahead of TLS and HTTP decoding. */
    @ChannelHandler.Sharable
    private final class AcceptHook extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof Channel child) {
                child.pipeline().addFirst(HANDLER, new ConnectionTimer(timeoutMillis));
            }
            ctx.fireChannelRead(msg);
        }
    }

    /** One connection's deadline: armed at connect and by bytes while no request is in flight, stopped by a head. */
    static final class ConnectionTimer extends ChannelInboundHandlerAdapter {
        private final long timeoutMillis;
        private ChannelHandlerContext ctx;
        private ScheduledFuture<?> pending;
        private int inFlight;

        ConnectionTimer(long timeoutMillis) {
            this.timeoutMillis = timeoutMillis;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            this.ctx = ctx;
            arm();
            ctx.fireChannelActive();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (inFlight == 0 && pending == null) {
                arm();
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            disarm();
            ctx.fireChannelInactive();
        }

        void requestStarted() {
            inFlight++;
            disarm();
        }

        void requestEnded() {
            if (inFlight > 0) {
                inFlight--;
            }
        }

        private void arm() {
            disarm();
            pending = ctx.executor().schedule(() -> {
                if (inFlight == 0 && ctx.channel().isActive()) {
                    LOG.infof("closing a connection from %s: no complete request head within %d s",
                            ctx.channel().remoteAddress(), timeoutMillis / 1000);
                    ctx.close();
                }
            }, timeoutMillis, TimeUnit.MILLISECONDS);
        }

        private void disarm() {
            if (pending != null) {
                pending.cancel(false);
                pending = null;
            }
        }
    }
}
