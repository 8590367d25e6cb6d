// One definition per endpoint: the same zod schemas validate the request and describe it in
// the OpenAPI document, so the documentation cannot drift from what the API accepts.
import type { RouteConfig } from "@asteasolutions/zod-to-openapi";
import type { Request, RequestHandler, Response } from "express";
import { z } from "zod";
import { ApiError, notFound, type ErrorDetail } from "../errors";
import { requireAuth, type AuthMode, type Principal } from "../middleware/authenticate";

type Method = "get" | "post" | "put" | "delete";
type ObjectSchema = z.ZodObject;

export interface ResponseSpec {
  readonly description: string;
  readonly schema?: z.ZodType;
}

export interface HandlerInput<A extends AuthMode, P, Q, B> {
  readonly req: Request;
  readonly res: Response;
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly principal: A extends "none" ? null : Principal;
}

export interface RouteSpec<
  A extends AuthMode,
  P extends ObjectSchema,
  Q extends ObjectSchema,
  B extends z.ZodType,
> {
  readonly method: Method;
  /** Express path, e.g. /v1/systems/:id. */
  readonly path: string;
  /** Unique, camelCase: what generated clients name the call. */
  readonly operationId: string;
  readonly summary: string;
  readonly description: string;
  readonly tag: string;
  readonly auth: A;
  /**
   * A probe (/health, /ready): mounted before identification, rate limits and body parsing, so it
   * never answers 429, and 503 only when its responses say so.
   */
  readonly probe?: boolean;
  /** Also counted against EXPENSIVE_RATE_LIMIT_PER_MINUTE. */
  readonly expensive?: boolean;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  readonly responses: Readonly<Record<number, ResponseSpec>>;
  readonly handler: (
    input: HandlerInput<A, z.output<P>, z.output<Q>, z.output<B>>,
  ) => Promise<void> | void;
}

/** A route with its types erased: what app.ts mounts and what the OpenAPI document lists. */
export interface RouteDefinition {
  readonly method: Method;
  readonly path: string;
  readonly auth: AuthMode;
  readonly expensive: boolean;
  /** Has a JSON body: the body parser runs for it (and only for it). */
  readonly hasBody: boolean;
  readonly openapi: RouteConfig;
  readonly handler: RequestHandler;
}

const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      requestId: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .meta({
    id: "Error",
    description: "Every error: a stable code, a message for people and the request's id.",
  });

/** What a route without params or a query gets: no fields. */
type Empty = z.ZodObject<Record<never, never>>;

export function defineRoute<
  A extends AuthMode,
  P extends ObjectSchema = Empty,
  Q extends ObjectSchema = Empty,
  B extends z.ZodType = z.ZodUndefined,
>(spec: RouteSpec<A, P, Q, B>): RouteDefinition {
  // Not async: a synchronous handler (the probes) answers without a promise and its microtasks;
  // Express 5 catches what this throws and follows the promise an asynchronous handler returns.
  const handler: RequestHandler = (req, res) => {
    const principal = spec.auth === "none" ? null : requireAuth(req, spec.auth);
    // A malformed id cannot name anything: answer as for an unknown one.
    const params = spec.params?.safeParse(req.params);
    if (params !== undefined && !params.success) throw notFound();
    // Without a query schema every parameter is ignored: z.object({}) would strip them all.
    const query = spec.query === undefined ? {} : validate("query", spec.query, req.query ?? {});
    const body = spec.body === undefined ? undefined : validate("body", spec.body, req.body);
    return spec.handler({
      req,
      res,
      params: (params?.data ?? {}) as z.output<P>,
      query: query as z.output<Q>,
      body: body as z.output<B>,
      principal: principal as HandlerInput<A, unknown, unknown, unknown>["principal"],
    });
  };
  return {
    method: spec.method,
    path: spec.path,
    auth: spec.auth,
    expensive: spec.expensive ?? false,
    hasBody: spec.body !== undefined,
    openapi: openApiRoute(spec),
    handler,
  };
}

function validate(where: "query" | "body", schema: z.ZodType, value: unknown): unknown {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const details: ErrorDetail[] = parsed.error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join("."),
    message: issue.message,
  }));
  const fields = [...new Set(details.map((d) => d.path))].join(", ");
  throw new ApiError(400, "validation_failed", `The request is invalid: ${fields}.`, { details });
}

/** An error answer as the document describes it. */
export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorSchema } },
});

type Spec = RouteSpec<AuthMode, ObjectSchema, ObjectSchema, z.ZodType>;

/** The answers the route declares; an error status without a schema carries the Error body. */
function declaredResponses(spec: Spec): RouteConfig["responses"] {
  const responses: RouteConfig["responses"] = {};
  for (const [status, response] of Object.entries(spec.responses)) {
    const schema = response.schema ?? (Number(status) >= 400 ? ErrorSchema : undefined);
    responses[status] =
      schema === undefined
        ? { description: response.description }
        : { description: response.description, content: { "application/json": { schema } } };
  }
  return responses;
}

/** The answers the middlewares give on the route's behalf, each with the Error body. */
function sharedResponses(spec: Spec): Record<string, string> {
  const shared: Record<string, string> = {};
  if (spec.body !== undefined || spec.query !== undefined) {
    shared["400"] = "The request is invalid; details name each bad field.";
  }
  if (spec.body !== undefined) {
    shared["413"] = "The body is larger than 1 MB.";
    shared["415"] = "The body is not JSON (send Content-Type: application/json, UTF-8).";
  }
  if (spec.auth !== "none") {
    shared["401"] = "No credentials were sent, or not as Bearer.";
    shared["403"] =
      spec.auth === "user"
        ? "The access token is invalid or expired, or an API key was sent: this needs a user's access token."
        : "The credentials are invalid, expired or revoked.";
  }
  if (spec.params !== undefined) {
    shared["400"] ??= "The path is not valid percent-encoding.";
    shared["404"] = "Not found in your org.";
  }
  if (spec.probe !== true) {
    shared["429"] = spec.expensive
      ? "Rate limited (this operation has its own, lower limit); see Retry-After."
      : "Rate limited; see Retry-After.";
    shared["500"] = "An unexpected fault on our side (logged); never with internals.";
    shared["503"] = "A dependency is unavailable or did not answer in time; see Retry-After.";
  }
  return shared;
}

/** Who may call: user routes take only an access token, the others an API key too. */
function securityOf(auth: AuthMode): Record<string, string[]>[] {
  if (auth === "none") return [];
  if (auth === "user") return [{ bearerAuth: [] }];
  return [{ bearerAuth: [] }, { apiKeyBearer: [] }, { apiKeyHeader: [] }];
}

function openApiRoute(spec: Spec): RouteConfig {
  const responses = declaredResponses(spec);
  for (const [status, description] of Object.entries(sharedResponses(spec))) {
    responses[status] ??= errorResponse(description);
  }
  return {
    method: spec.method,
    path: spec.path.replace(/:(\w+)/g, "{$1}"),
    operationId: spec.operationId,
    summary: spec.summary,
    description: spec.description,
    tags: [spec.tag],
    security: securityOf(spec.auth),
    request: {
      params: spec.params,
      query: spec.query,
      body:
        spec.body === undefined
          ? undefined
          : { required: true, content: { "application/json": { schema: spec.body } } },
    },
    responses,
  };
}
