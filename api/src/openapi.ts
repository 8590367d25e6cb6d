// The OpenAPI 3 document served at GET /docs, generated from the route definitions and so from
// the very schemas that validate requests.
import { OpenAPIRegistry, OpenApiGeneratorV3 } from "@asteasolutions/zod-to-openapi";
import type { RouteDefinition } from "./routes/define";

export type OpenApiDocument = ReturnType<OpenApiGeneratorV3["generateDocument"]>;

export function buildOpenApiDocument(routes: readonly RouteDefinition[]): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "An access token from POST /v1/auth/login, or an API key.",
  });
  registry.registerComponent("securitySchemes", "apiKeyHeader", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
  });
  for (const route of routes) registry.registerPath(route.openapi);
  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: "3.0.3",
    info: {
      title: "Keel API",
      version: "1",
      description:
        "Multi-tenant evidence and events. Errors are " +
        '{"error":{"code","message","requestId"}}; every response carries X-Request-ID.',
    },
  });
}
