// One JSON log line per request, tagged with a request id that every other line of the request
// carries too (req.log). An incoming X-Request-ID is kept when it is a sane token (nginx's
// $request_id, a UUID, ...), otherwise a new id is made; either way it is echoed back.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Request, RequestHandler } from "express";
import { pinoHttp } from "pino-http";
import type { Logger } from "../logger";

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// Paths polled by machines; logging each poll would drown the useful lines.
const QUIET_PATHS = new Set(["/health", "/metrics"]);

/** The URL without secrets: signatures of local evidence links are replaced. */
function loggableUrl(url: string): string {
  return url.replace(/([?&]signature=)[^&]*/gi, "$1[redacted]");
}

/** The request's id (always a string: genReqId below makes it). */
export function requestIdOf(req: IncomingMessage): string {
  return typeof req.id === "string" ? req.id : "";
}

function requestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers["x-request-id"];
  const id =
    typeof incoming === "string" && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader("X-Request-ID", id);
  return id;
}

/**
 * pino-http for every request but the quiet probes. Those are answered thousands of times a
 * minute and logged never: they get their request id, and a request logger only if something
 * asks for one (an error), so a probe costs no logger set-up (measured in bench/).
 */
export function httpLogger(logger: Logger): RequestHandler {
  const logging = requestLogger(logger);
  return (req, res, next) => {
    if (!QUIET_PATHS.has(req.path)) {
      logging(req, res, next);
      return;
    }
    const id = requestId(req, res);
    req.id = id;
    let child: Logger | undefined;
    Object.defineProperty(req, "log", {
      configurable: true,
      enumerable: true,
      get: () => (child ??= logger.child({ requestId: id })),
    });
    next();
  };
}

function requestLogger(logger: Logger) {
  return pinoHttp({
    logger,
    genReqId: requestId,
    customAttributeKeys: { reqId: "requestId" },
    // Every line logged through req.log carries just the request id; the completion line adds
    // the request and response.
    quietReqLogger: true,
    wrapSerializers: false,
    serializers: {
      req: (req: Request) => ({
        method: req.method,
        url: loggableUrl(req.originalUrl),
        ip: req.ip,
        userAgent: req.get("user-agent"),
      }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, error) =>
      error !== undefined || res.statusCode >= 500 ? "error" : "info",
  });
}
