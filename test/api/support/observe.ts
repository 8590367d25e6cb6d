// Sees every response the tests get from an API: from apps built by testApp (in this process,
// through node:http) and from built servers started by startServer (through fetch). Each one is
// checked against the contract; the problems wait in `violations` for the test hook to report.
import { ServerResponse } from "node:http";
import type { Express } from "express";
import { Contract, type ObservedResponse } from "./contract";

const apps = new WeakSet<object>();
const origins = new Set<string>();
const bodies = new WeakMap<ServerResponse, Buffer[]>();
let contract: Contract | undefined;

/** Problems found since the last take; and how many responses were checked in all. */
const state = { violations: [] as string[], checked: 0 };

function check(observed: ObservedResponse): void {
  contract ??= new Contract();
  state.checked += 1;
  state.violations.push(...contract.problems(observed));
}

export function takeViolations(): string[] {
  return state.violations.splice(0);
}

export function checkedCount(): number {
  return state.checked;
}

/** Checks every response `app` sends. */
export function observeApp(app: Express): Express {
  apps.add(app);
  return app;
}

/** Checks every fetch answer from `origin` (a built server). */
export function observeOrigin(origin: string): void {
  origins.add(origin);
}

/** A chunk given to write/end as bytes; null for none (or a callback in its place). */
function chunkOf(chunk: unknown, encoding: unknown): Buffer | null {
  if (chunk instanceof Uint8Array) return Buffer.from(chunk);
  if (typeof chunk !== "string") return null;
  return Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
}

function observedApp(res: ServerResponse): boolean {
  const app = (res.req as { app?: object } | undefined)?.app;
  return app !== undefined && apps.has(app);
}

function patchServerResponses(): void {
  // Kept to be called with the response as `this`, exactly as Node calls them.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const { write, end } = ServerResponse.prototype;
  ServerResponse.prototype.write = function (this: ServerResponse, ...args: unknown[]) {
    const chunk = chunkOf(args[0], args[1]);
    if (chunk !== null && observedApp(this)) bodies.set(this, [...(bodies.get(this) ?? []), chunk]);
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
    if (observedApp(this)) {
      const chunk = chunkOf(args[0], args[1]);
      const body = Buffer.concat([...(bodies.get(this) ?? []), ...(chunk === null ? [] : [chunk])]);
      check({
        method: this.req.method ?? "GET",
        path: new URL(this.req.url ?? "/", "http://app").pathname,
        status: this.statusCode,
        contentType: String(this.getHeader("content-type") ?? ""),
        body: body.toString("utf8"),
      });
    }
    return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof end;
}

function patchFetch(): void {
  const original = globalThis.fetch;
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await original(input, init);
    const url = new URL(input instanceof Request ? input.url : input.toString());
    if (origins.has(url.origin)) {
      check({
        method: (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase(),
        path: url.pathname,
        status: response.status,
        contentType: response.headers.get("content-type") ?? "",
        body: await response.clone().text(),
      });
    }
    return response;
  };
}

patchServerResponses();
patchFetch();
