// The OpenAPI document exactly as GET /docs serves it, built without any dependency: the route
// definitions only need their dependencies when a request arrives, so here they get an inert
// context whose every use throws.
import { documentOf, routeTable } from "../src/app";
import type { OpenApiDocument } from "../src/openapi";
import type { RouteContext } from "../src/routes/context";

/** Stands for a dependency; any property read or call fails loudly. */
function inert(name: string): never {
  const fail = (): never => {
    throw new Error(`building the OpenAPI document used the ${name} dependency`);
  };
  return new Proxy(fail, { get: fail, apply: fail }) as never;
}

export function servedDocument(): OpenApiDocument {
  const ctx: RouteContext = {
    config: inert("config"),
    logger: inert("logger"),
    db: inert("db"),
    redis: inert("redis"),
    store: inert("store"),
    apiKeys: inert("apiKeys"),
    signer: inert("signer"),
    lockout: inert("lockout"),
  };
  return documentOf(routeTable(ctx));
}
