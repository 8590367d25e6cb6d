// The OpenAPI 3 document served at GET /docs, generated from the route definitions and so from
// the very schemas that validate requests. It is linted in CI (Redocly's recommended rules and
// Spectral's spectral:oas, see api/openapi/) and every response of the api tier is checked
// against it.
import {
  OpenAPIRegistry,
  OpenApiGeneratorV3,
  type RouteConfig,
} from "@asteasolutions/zod-to-openapi";
import type { RouteDefinition } from "./routes/define";

export type OpenApiDocument = ReturnType<OpenApiGeneratorV3["generateDocument"]>;

const TAGS = [
  { name: "operations", description: "Probes, metrics and this document." },
  { name: "auth", description: "Registration and login (access tokens)." },
  { name: "api-keys", description: "The org's API keys, managed with an access token." },
  { name: "systems", description: "The things evidence and events are about." },
  { name: "evidence", description: "Files uploaded and downloaded through presigned URLs." },
  { name: "events", description: "Time-series events and their statistics." },
];

function registerSecuritySchemes(registry: OpenAPIRegistry): void {
  registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A user's access token from POST /v1/auth/login (15 minutes).",
  });
  registry.registerComponent("securitySchemes", "apiKeyBearer", {
    type: "http",
    scheme: "bearer",
    description: "An API key sent as a Bearer token.",
  });
  registry.registerComponent("securitySchemes", "apiKeyHeader", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "An API key (from POST /v1/api-keys, or the operator's BOOTSTRAP_API_KEY).",
  });
}

/**
 * zod-to-openapi writes z.unknown() (any JSON value) as {"nullable": true}; in OpenAPI 3.0
 * `nullable` means nothing without `type`, and {} already admits null.
 */
function dropTypelessNullable(node: unknown): void {
  if (node === null || typeof node !== "object") return;
  const record = node as Record<string, unknown>;
  if (record.nullable === true && record.type === undefined) delete record.nullable;
  for (const child of Object.values(record)) dropTypelessNullable(child);
}

/** `routes` are mounted by createApp; `handWritten` describes the paths app.ts serves itself. */
export function buildOpenApiDocument(
  routes: readonly RouteDefinition[],
  handWritten: readonly RouteConfig[] = [],
): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registerSecuritySchemes(registry);
  for (const route of routes) registry.registerPath(route.openapi);
  for (const route of handWritten) registry.registerPath(route);
  const document = new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: "3.0.3",
    info: {
      title: "Keel API",
      version: "1",
      description:
        "Multi-tenant evidence and events. Errors are " +
        '{"error":{"code","message","requestId"}}; every response carries X-Request-ID. ' +
        "A dependency that does not answer in time gives 503 with Retry-After.",
      contact: { name: "The Keel operators" },
      license: { name: "Proprietary" },
    },
    servers: [{ url: "/", description: "The origin this document was fetched from." }],
    tags: TAGS,
  });
  dropTypelessNullable(document);
  return document;
}
