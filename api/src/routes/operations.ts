// Endpoints for machines: liveness, readiness (gates rolling restarts), metrics (loopback only)
// and the OpenAPI document.
import { isIP } from "node:net";
import type { RouteConfig } from "@asteasolutions/zod-to-openapi";
import type { Request, RequestHandler } from "express";
import type { Registry } from "prom-client";
import { z } from "zod";
import { checkReadiness } from "../readiness";
import type { RouteContext } from "./context";
import { defineRoute, errorResponse, type RouteDefinition } from "./define";

const Health = z.object({ status: z.literal("ok") }).meta({ id: "Health" });

const Readiness = z
  .object({
    status: z.enum(["ready", "unavailable"]),
    checks: z.object({ database: z.boolean(), redis: z.boolean(), storage: z.boolean() }),
  })
  .meta({ id: "Readiness" });

const OpenApiDocumentSchema = z
  .looseObject({
    openapi: z.string(),
    info: z.looseObject({ title: z.string(), version: z.string() }),
    paths: z.looseObject({}),
  })
  .meta({ id: "OpenApiDocument", description: "An OpenAPI 3.0 document." });

/** The paths app.ts serves with handlers of its own, as the document describes them. */
export const HAND_WRITTEN_OPERATIONS: readonly RouteConfig[] = [
  {
    method: "get",
    path: "/docs",
    operationId: "getOpenApiDocument",
    summary: "This OpenAPI document",
    description:
      "The contract: generated from the schemas that validate requests. No credentials needed; " +
      "counted against the caller's rate limit.",
    tags: ["operations"],
    security: [],
    responses: {
      200: {
        description: "The document.",
        content: { "application/json": { schema: OpenApiDocumentSchema } },
      },
      429: errorResponse("Rate limited; see Retry-After."),
      500: errorResponse("An unexpected fault on our side (logged); never with internals."),
      503: errorResponse("Credentials were sent and the database could not check them in time."),
    },
  },
  {
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    summary: "Prometheus metrics, for this machine only",
    description:
      "Only for a loopback peer that did not come through the proxy (no X-Forwarded-For, " +
      "X-Real-IP or Forwarded); anyone else gets the 404 of an unknown route.",
    tags: ["operations"],
    security: [],
    responses: {
      200: {
        description: "Prometheus text exposition format.",
        content: { "text/plain": { schema: z.string() } },
      },
      404: errorResponse("Not a local caller: the answer of an unknown route."),
    },
  },
];

export function operationRoutes(ctx: RouteContext): RouteDefinition[] {
  const health = defineRoute({
    method: "get",
    path: "/health",
    operationId: "getHealth",
    summary: "Liveness: the process answers (no dependency is touched)",
    description: "Answers as long as the process runs; touches no dependency. For liveness probes.",
    tag: "operations",
    auth: "none",
    probe: true,
    responses: { 200: { description: "Alive.", schema: Health } },
    handler: ({ res }) => {
      res.set("Cache-Control", "no-store").json({ status: "ok" });
    },
  });

  const ready = defineRoute({
    method: "get",
    path: "/ready",
    operationId: "getReadiness",
    summary: "Readiness: database, Redis and evidence storage, each checked within 1 second",
    description:
      "Checks PostgreSQL (SELECT 1), Redis (PING) and evidence storage (an empty listing) side by side, each given 1 second. 503 names the failing checks; load balancers take the instance out meanwhile.",
    tag: "operations",
    auth: "none",
    probe: true,
    responses: {
      200: { description: "Every dependency answered.", schema: Readiness },
      503: { description: "At least one check is false.", schema: Readiness },
    },
    handler: async ({ res }) => {
      const checks = await checkReadiness(ctx);
      const ok = checks.database && checks.redis && checks.storage;
      res
        .status(ok ? 200 : 503)
        .set("Cache-Control", "no-store")
        .json({ status: ok ? "ready" : "unavailable", checks });
    },
  });

  return [health, ready];
}

/** True for 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === "::1") return true;
  const v4 = address.toLowerCase().startsWith("::ffff:") ? address.slice(7) : address;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

const PROXY_HEADERS = ["x-forwarded-for", "x-real-ip", "forwarded"];

/**
 * Metrics only for a client on this machine that did not come through the proxy: nginx is on
 * the same machine (a loopback peer too) and always adds X-Forwarded-For / X-Real-IP.
 */
function isPrivateCaller(req: Request): boolean {
  return (
    isLoopback(req.socket.remoteAddress) &&
    PROXY_HEADERS.every((name) => req.headers[name] === undefined)
  );
}

/** GET /metrics; anyone else gets the same 404 as an unknown route. */
export function metricsHandler(registry: Registry): RequestHandler {
  return async (req, res, next) => {
    if (!isPrivateCaller(req)) {
      next();
      return;
    }
    res.set("Content-Type", registry.contentType).send(await registry.metrics());
  };
}
