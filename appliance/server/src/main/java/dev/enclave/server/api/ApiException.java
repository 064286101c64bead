package dev.enclave.server.api;

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

    public static ApiException modelNotFound(String model) {
        return new ApiException(404, "invalid_request_error", "model_not_found", "model",
                "The model '" + model + "' does not exist");
    }
}
