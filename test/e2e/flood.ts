// One abusive client: connections sending sign-in attempts back to back through nginx for a
// while, which nginx's sign-in limit answers with 429. Counts the answers by status.
import { Agent, request } from "node:https";
import type { LookupFunction } from "node:net";

export interface FloodOptions {
  /** The API's base URL as the host reaches it. */
  readonly url: string;
  readonly ca: string;
  readonly lookup: LookupFunction;
  readonly connections: number;
  readonly seconds: number;
}

/** How many answers of each status came back; "error" counts requests that got none. */
export type FloodResult = Record<string, number>;

export async function flood(options: FloodOptions): Promise<FloodResult> {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: options.connections,
    ca: options.ca,
    lookup: options.lookup,
  });
  const counts: FloodResult = {};
  const count = (key: string): void => {
    counts[key] = (counts[key] ?? 0) + 1;
  };
  const body = JSON.stringify({ email: "flood@keel.test", password: "not the password" });
  const until = Date.now() + options.seconds * 1000;

  const attempt = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request(
        new URL("/v1/auth/login", options.url),
        { method: "POST", agent, timeout: 10_000, headers: { "content-type": "application/json" } },
        (res) => {
          res.resume();
          res.on("end", () => {
            count(String(res.statusCode));
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", () => {
        count("error");
        resolve();
      });
      req.end(body);
    });

  const connection = async (): Promise<void> => {
    while (Date.now() < until) await attempt();
  };
  await Promise.all(Array.from({ length: options.connections }, connection));
  agent.destroy();
  return counts;
}
