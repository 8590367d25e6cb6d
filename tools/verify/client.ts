// A small HTTP(S) client for the verification suite: exact control over TLS trust and name
// resolution (a stand-in's names resolve to loopback), and access to raw status and headers.
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";

export interface ClientOptions {
  /** Extra trusted roots (PEM); without it, the system's roots. */
  readonly ca?: string;
  /** Name resolution; without it, the system's resolver. */
  readonly lookup?: LookupFunction;
  readonly timeoutMs?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  text(): string;
  json<T = unknown>(): T;
  /** A header's single value ("" when absent). */
  header(name: string): string;
}

export interface RequestInit {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

export function send(
  url: string | URL,
  init: RequestInit = {},
  options: ClientOptions = {},
): Promise<HttpResponse> {
  const target = new URL(url);
  const requestFn = target.protocol === "https:" ? httpsRequest : httpRequest;
  const body = init.body === undefined ? undefined : Buffer.from(init.body);
  return new Promise((resolve, reject) => {
    const req = requestFn(
      target,
      {
        method: init.method ?? "GET",
        headers: {
          ...(body === undefined ? {} : { "content-length": String(body.length) }),
          ...init.headers,
        },
        ca: options.ca,
        lookup: options.lookup,
        agent: false,
        timeout: options.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const data = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: data,
            text: () => data.toString("utf8"),
            json: <T>() => JSON.parse(data.toString("utf8")) as T,
            header: (name) => {
              const value = res.headers[name.toLowerCase()];
              return Array.isArray(value) ? value.join(", ") : (value ?? "");
            },
          });
        });
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`${init.method ?? "GET"} ${target.href} timed out`)),
    );
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A fetch for the generated client (openapi-fetch) that goes through `send`, so typed calls get
 * the same trust roots, name resolution and timeout as every other request of the suite.
 */
export function fetchThrough(options: ClientOptions): (request: Request) => Promise<Response> {
  return async (request) => {
    const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer());
    const res = await send(
      request.url,
      { method: request.method, headers: Object.fromEntries(request.headers), body },
      options,
    );
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      for (const one of Array.isArray(value) ? value : [value ?? ""]) headers.append(name, one);
    }
    // A 204 or 304 must not carry a body, even an empty one.
    const noBody = res.status === 204 || res.status === 304;
    return new Response(noBody ? null : res.body, { status: res.status, headers });
  };
}
