// A load generator for the end-to-end tier: several clients send a steady mix of requests
// through nginx (health, a read and a write with an API key, and a read with a user's access
// token when given one) until stopped, and every request that does not succeed is recorded
// with what happened.
import { Agent, request } from "node:https";
import type { LookupFunction } from "node:net";

export interface LoadOptions {
  /** The API's base URL as the host reaches it, e.g. https://api.standin.test:28672. */
  readonly url: string;
  readonly ca: string;
  readonly lookup: LookupFunction;
  readonly apiKey: string;
  /** A user's access token: the mix then also reads with it, as a signed-in user does. */
  readonly accessToken?: string;
  /** Clients sending one request after another (default 4). */
  readonly concurrency?: number;
}

export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  /** What went wrong, one line per failed request (first 20). */
  readonly failures: readonly string[];
}

interface Call {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly body?: string;
  readonly expect: number;
  /** Sent with the access token instead of the API key. */
  readonly asUser?: boolean;
}

function calls(withUser: boolean): Call[] {
  return [
    { method: "GET", path: "/health", expect: 200 },
    { method: "GET", path: "/v1/systems", expect: 200 },
    {
      method: "POST",
      path: "/v1/events",
      body: JSON.stringify([{ type: "load.tick", value: 1 }]),
      expect: 202,
    },
    ...(withUser
      ? [{ method: "GET", path: "/v1/systems", expect: 200, asUser: true } as const]
      : []),
  ];
}

export function startLoad(options: LoadOptions): { stop(): Promise<LoadResult> } {
  const agent = new Agent({ keepAlive: true, ca: options.ca, lookup: options.lookup });
  const failures: string[] = [];
  let ok = 0;
  let failed = 0;
  let running = true;

  const send = (call: Call): Promise<void> =>
    new Promise((resolve) => {
      const started = Date.now();
      const req = request(
        new URL(call.path, options.url),
        {
          method: call.method,
          agent,
          timeout: 15_000,
          headers: {
            ...(call.asUser === true
              ? { authorization: `Bearer ${options.accessToken}` }
              : { "x-api-key": options.apiKey }),
            ...(call.body === undefined ? {} : { "content-type": "application/json" }),
          },
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => {
            if (res.statusCode === call.expect) {
              ok++;
            } else {
              failed++;
              const who = call.asUser === true ? " (access token)" : "";
              failures.push(
                `${call.method} ${call.path}${who}: ${res.statusCode} ${body.slice(0, 200)}`,
              );
            }
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", (err) => {
        failed++;
        failures.push(
          `${call.method} ${call.path}: ${err.message} after ${Date.now() - started} ms`,
        );
        resolve();
      });
      req.end(call.body);
    });

  const client = async (offset: number): Promise<void> => {
    const mix = calls(options.accessToken !== undefined);
    for (let i = offset; running; i++) await send(mix[i % mix.length] as Call);
  };
  const clients = Array.from({ length: options.concurrency ?? 4 }, (_, i) => client(i));

  return {
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(clients);
      agent.destroy();
      return { ok, failed, failures: failures.slice(0, 20) };
    },
  };
}
