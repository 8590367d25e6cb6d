// Endpoints for machines: liveness, readiness (gates rolling restarts), metrics (loopback only)
// and the OpenAPI document.
import { isIP } from "node:net";
import type { Request, RequestHandler } from "express";
import type { Registry } from "prom-client";
import { z } from "zod";
import { checkReadiness } from "../readiness";
import type { RouteContext } from "./context";
import { defineRoute, type RouteDefinition } from "./define";

const Health = z.object({ status: z.literal("ok") }).meta({ id: "Health" });

const Readiness = z
  .object({
    status: z.enum(["ready", "unavailable"]),
    checks: z.object({ database: z.boolean(), redis: z.boolean(), storage: z.boolean() }),
  })
  .meta({ id: "Readiness" });

export function operationRoutes(ctx: RouteContext): RouteDefinition[] {
  const health = defineRoute({
    method: "get",
    path: "/health",
    summary: "Liveness: the process answers (no dependency is touched)",
    tag: "operations",
    auth: "none",
    responses: { 200: { description: "Alive.", schema: Health } },
    handler: ({ res }) => {
      res.set("Cache-Control", "no-store").json({ status: "ok" });
    },
  });

  const ready = defineRoute({
    method: "get",
    path: "/ready",
    summary: "Readiness: database, Redis and evidence storage, each checked within 1 second",
    tag: "operations",
    auth: "none",
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
