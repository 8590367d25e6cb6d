// The last two middlewares: unknown routes answer 404, and every error becomes the JSON error
// shape. Clients see a code and a message, never a stack trace; a 5xx keeps its full error in
// the request's log line instead.
import type { ErrorRequestHandler, RequestHandler } from "express";
import { isDatabaseUnavailable } from "../database";
import { ApiError, serviceUnavailable } from "../errors";
import { requestIdOf } from "./http-logger";
import { StorageUnavailableError } from "../storage/evidence-store";

export const notFoundHandler: RequestHandler = (req) => {
  throw new ApiError(404, "not_found", `No route for ${req.method} ${req.path}.`);
};

// Errors raised by the body parser and the router carry `type` and `status`.
interface HttpError extends Error {
  readonly status?: number;
  readonly statusCode?: number;
  readonly type?: string;
  readonly expose?: boolean;
}

function bodyParserError(error: HttpError): ApiError | null {
  switch (error.type) {
    case "entity.too.large":
      return new ApiError(413, "payload_too_large", "The request body is larger than 1 MB.");
    case "entity.parse.failed":
      return new ApiError(400, "invalid_json", "The request body is not valid JSON.");
    case "encoding.unsupported":
    case "charset.unsupported":
      return new ApiError(
        415,
        "unsupported_media_type",
        "Send the request body as UTF-8 JSON (Content-Type: application/json).",
      );
    default:
      return null;
  }
}

/**
 * What the client is told about `error`. Any other failure, a database error included (even a
 * PostgreSQL data exception, class 22: the validators are what keep bad input out, so such an
 * error comes from stored data or from our own queries), is ours to fix: 500, logged in full.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof Error) {
    const http = error as HttpError;
    const fromParser = bodyParserError(http);
    if (fromParser !== null) return fromParser;
    const status = http.status ?? http.statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return new ApiError(status, "bad_request", "The request could not be understood.");
    }
  }
  if (isDatabaseUnavailable(error)) return serviceUnavailable("database");
  if (error instanceof StorageUnavailableError) return serviceUnavailable("evidence storage");
  return new ApiError(500, "internal_error", "Internal server error.");
}

export const errorHandler: ErrorRequestHandler = (error, req, res, _next) => {
  if (res.headersSent) {
    // Too late for an error body: log it (Express would print it as plain text) and cut the
    // connection so the client sees an incomplete response, not a complete-looking one.
    req.log.error({ err: error }, "error after the response started");
    res.destroy();
    return;
  }
  const apiError = toApiError(error);
  if (apiError.status >= 500) {
    // pino-http logs it with the request's completion line, stack included.
    res.err = error instanceof Error ? error : new Error(String(error));
  }
  for (const [name, value] of Object.entries(apiError.options.headers ?? {})) {
    res.setHeader(name, value);
  }
  res.status(apiError.status).json({
    error: {
      code: apiError.code,
      message: apiError.message,
      requestId: requestIdOf(req),
      ...(apiError.options.details === undefined ? {} : { details: apiError.options.details }),
    },
  });
};
