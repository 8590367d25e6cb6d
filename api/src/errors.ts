// The one error shape every response uses: {"error":{"code","message","requestId"}} (plus
// "details" for validation failures). ApiError carries what a client may see; anything else is
// an internal error, logged in full and answered with a generic message.
export interface ErrorDetail {
  /** Where the problem is, e.g. "body.email" or "query.bucket". */
  readonly path: string;
  readonly message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly options: {
      readonly details?: readonly ErrorDetail[];
      readonly headers?: Readonly<Record<string, string>>;
    } = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const notFound = (what = "resource"): ApiError =>
  new ApiError(404, "not_found", `The ${what} does not exist.`);

export const unauthorized = (message: string): ApiError =>
  new ApiError(401, "unauthorized", message, {
    headers: { "WWW-Authenticate": 'Bearer realm="keel"' },
  });

export const forbidden = (message: string): ApiError => new ApiError(403, "forbidden", message);

export const conflict = (code: string, message: string): ApiError =>
  new ApiError(409, code, message);

export const tooManyRequests = (
  message: string,
  retryAfterMs: number,
  code = "rate_limited",
): ApiError =>
  new ApiError(429, code, message, {
    headers: { "Retry-After": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
  });

export const serviceUnavailable = (what: string): ApiError =>
  new ApiError(503, "service_unavailable", `The ${what} is unavailable; try again shortly.`, {
    headers: { "Retry-After": "5" },
  });
