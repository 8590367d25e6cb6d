// createApp(deps): the whole HTTP application, built from its dependencies with no module-global
// state, so tests can build as many as they like. server.ts owns listening and shutdown.
import express, { type Express, type RequestHandler } from "express";
import type { ApiKeyCache } from "./auth/api-key-cache";
import { KeyRingFile } from "./auth/key-ring";
import { LoginLockout } from "./auth/lockout";
import { TokenSigner } from "./auth/tokens";
import type { Config } from "./config";
import type { Database } from "./database";
import type { Logger } from "./logger";
import { createMetrics } from "./metrics";
import { identify, requireAuth } from "./middleware/authenticate";
import { jsonBody } from "./middleware/body";
import { errorHandler, notFoundHandler } from "./middleware/errors";
import { httpLogger } from "./middleware/http-logger";
import { createRateLimiter } from "./middleware/rate-limit";
import { corsPolicy, securityHeaders } from "./middleware/security";
import { buildOpenApiDocument, type OpenApiDocument } from "./openapi";
import { checkReadiness } from "./readiness";
import type { RedisClient } from "./redis";
import { apiKeyRoutes } from "./routes/api-keys";
import { authRoutes } from "./routes/auth";
import type { RouteContext } from "./routes/context";
import type { RouteDefinition } from "./routes/define";
import { eventRoutes } from "./routes/events";
import { evidenceRoutes } from "./routes/evidence";
import { mountLocalEvidence } from "./routes/local-evidence";
import { HAND_WRITTEN_OPERATIONS, metricsHandler, operationRoutes } from "./routes/operations";
import { systemRoutes } from "./routes/systems";
import type { EvidenceStore } from "./storage/evidence-store";
import { LocalEvidenceStore } from "./storage/local-store";

export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Database;
  readonly redis: RedisClient;
  readonly store: EvidenceStore;
  /** One per process: it holds the Redis subscription that carries revocations. */
  readonly apiKeys: ApiKeyCache;
}

function mount(app: Express, route: RouteDefinition, before: RequestHandler[] = []): void {
  app[route.method](route.path, ...before, route.handler);
}

export interface RouteTable {
  /** The probes, mounted before identification, rate limits and body parsing. */
  readonly operations: RouteDefinition[];
  readonly api: RouteDefinition[];
}

export function routeTable(ctx: RouteContext): RouteTable {
  return {
    operations: operationRoutes(ctx),
    api: [
      ...authRoutes(ctx),
      ...apiKeyRoutes(ctx),
      ...systemRoutes(ctx),
      ...evidenceRoutes(ctx),
      ...eventRoutes(ctx),
    ],
  };
}

/** The OpenAPI document of every path the app serves (GET /docs). */
export function documentOf(table: RouteTable): OpenApiDocument {
  return buildOpenApiDocument([...table.operations, ...table.api], HAND_WRITTEN_OPERATIONS);
}

export function createApp(deps: AppDeps): Express {
  const { config, logger, db, redis, store } = deps;
  const ctx: RouteContext = {
    ...deps,
    signer: new TokenSigner(
      config.jwtSecret,
      config.jwtKeysFile === undefined
        ? undefined
        : new KeyRingFile(config.jwtKeysFile, (err) => {
            logger.error({ err }, "the JWT key ring could not be read again; keeping its keys");
          }),
    ),
    lockout: new LoginLockout(redis, logger),
  };
  const general = createRateLimiter({
    name: "general",
    limitPerMinute: config.rateLimitPerMinute,
    redis,
    logger,
  });
  const expensive = createRateLimiter({
    name: "expensive",
    limitPerMinute: config.expensiveRateLimitPerMinute,
    redis,
    logger,
  });
  // The same time-boxed checks as GET /ready, run at every scrape.
  const metrics = createMetrics({ dependencies: () => checkReadiness(deps) });
  const table = routeTable(ctx);
  const { operations, api } = table;
  const document = documentOf(table);

  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.trustProxy);

  app.use(httpLogger(logger));
  app.use(metrics.middleware);
  app.use(securityHeaders());
  app.use(corsPolicy(config.frontendOrigins));

  // Probes: no credentials, no rate limit, no body.
  app.get("/metrics", metricsHandler(metrics.registry));
  for (const route of operations) mount(app, route);

  // Everything else is counted per caller, so the caller is identified first.
  app.use(identify(ctx.apiKeys, ctx.signer));
  app.use(general);
  app.get("/docs", (_req, res) => {
    res.json(document);
  });
  if (store instanceof LocalEvidenceStore) mountLocalEvidence(app, store, db);

  for (const route of api) {
    // Only routes with a body parse one: the others ignore whatever is sent.
    const gate: RequestHandler[] = route.hasBody ? jsonBody() : [];
    if (route.auth !== "none") {
      const mode = route.auth;
      gate.push((req, _res, next) => {
        requireAuth(req, mode);
        next();
      });
    }
    if (route.expensive) gate.push(expensive);
    mount(app, route, gate);
  }

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
