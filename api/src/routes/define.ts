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
  readonly summary: string;
  readonly tag: string;
  readonly auth: A;
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
  .meta({ id: "Error" });

const EMPTY = z.object({});

export function defineRoute<
  A extends AuthMode,
  P extends ObjectSchema = typeof EMPTY,
  Q extends ObjectSchema = typeof EMPTY,
  B extends z.ZodType = z.ZodUndefined,
>(spec: RouteSpec<A, P, Q, B>): RouteDefinition {
  const handler: RequestHandler = async (req, res) => {
    const principal = spec.auth === "none" ? null : requireAuth(req, spec.auth);
    // A malformed id cannot name anything: answer as for an unknown one.
    const params = spec.params?.safeParse(req.params);
    if (params !== undefined && !params.success) throw notFound();
    const query = validate("query", spec.query ?? EMPTY, req.query ?? {});
    const body = spec.body === undefined ? undefined : validate("body", spec.body, req.body);
    await spec.handler({
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

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorSchema } },
});

function openApiRoute(spec: RouteSpec<AuthMode, ObjectSchema, ObjectSchema, z.ZodType>) {
  const responses: RouteConfig["responses"] = {};
  for (const [status, response] of Object.entries(spec.responses)) {
    responses[status] =
      response.schema === undefined
        ? { description: response.description }
        : {
            description: response.description,
            content: { "application/json": { schema: response.schema } },
          };
  }
  if (spec.body !== undefined || spec.query !== undefined) {
    responses["400"] ??= errorResponse("The request is invalid; details name each bad field.");
  }
  if (spec.auth !== "none") {
    responses["401"] = errorResponse("No credentials were sent.");
    responses["403"] = errorResponse("The credentials are invalid, expired or revoked.");
  }
  if (spec.params !== undefined) responses["404"] ??= errorResponse("Not found in your org.");
  responses["429"] = errorResponse("Rate limited; see Retry-After.");
  responses["503"] = errorResponse("A dependency is unavailable; retry later.");
  const security: Record<string, string[]>[] =
    spec.auth === "none"
      ? []
      : spec.auth === "user"
        ? [{ bearerAuth: [] }]
        : [{ bearerAuth: [] }, { apiKeyHeader: [] }];
  const route: RouteConfig = {
    method: spec.method,
    path: spec.path.replace(/:(\w+)/g, "{$1}"),
    summary: spec.summary,
    tags: [spec.tag],
    security,
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
  return route;
}
