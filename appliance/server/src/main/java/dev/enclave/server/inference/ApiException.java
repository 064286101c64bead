package dev.enclave.server.inference;

/** A request the API refuses, with the HTTP status and OpenAI's error fields. */
public class ApiException extends RuntimeException {

    public final int status;
    public final String type;
    public final String code;
    public final String param;

    public ApiException(int status, String type, String code, String param, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.code = code;
        this.param = param;
    }

    public static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", null, param, message);
    }

    /** The queue is full: the client should retry after a second (adapters send {@code Retry-After}). */
    public static ApiException busy() {
        return new ApiException(429, "rate_limit_error", "queue_full", null,
                "The server is busy: too many requests are waiting. Retry shortly.");
    }

    public static ApiException contextExceeded(int promptTokens, int maxTokens, int ctxLen) {
        return new ApiException(400, "invalid_request_error", "context_length_exceeded", "messages",
                "This model's maximum context length is " + ctxLen + " tokens. However, you requested "
                        + (promptTokens + maxTokens) + " tokens (" + promptTokens + " in the prompt, " + maxTokens
                        + " for the completion). Please reduce the prompt or the completion length.");
    }

    public static ApiException modelNotFound(String model) {
        return new ApiException(404, "invalid_request_error", "model_not_found", "model",
                "The model '" + model + "' does not exist");
    }
}
