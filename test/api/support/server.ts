// The built API (dist/api/server.js) run as a real process with plain node, as on the server.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { apiEnv } from "./app";
import { track } from "./children";
import { testEnv } from "./environment";
import { observeOrigin } from "./observe";
import { freePort, sleep } from "./ports";

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class ServerProcess {
  readonly stdout: string[] = [];
  stderr = "";
  readonly exited: Promise<Exit>;

  constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    let partial = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      this.stdout.push(...lines.filter((line) => line !== ""));
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The log lines written so far; every line must be JSON. */
  logs(): Record<string, unknown>[] {
    return this.stdout.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`a log line is not JSON: ${line}`);
      }
    });
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<Exit> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}

/** Runs `node <dist>/<script>` with exactly `env` (plus PATH). */
export function runDist(script: string, env: Record<string, string>): ChildProcess {
  return track(
    spawn(process.execPath, [join(testEnv().distDir, script)], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

async function untilHealthy(server: ServerProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (!server.running) throw new Error(`the server exited early:\n${server.stderr}`);
    try {
      if ((await fetch(server.url("/health"))).status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await server.stop("SIGKILL");
      throw new Error(`the server did not answer /health:\n${server.stderr}`);
    }
    await sleep(50);
  }
}

/**
 * Starts the built server; waits until /health answers unless told not to. Every answer fetched
 * from it is checked against the OpenAPI document (observe.ts).
 */
export async function startServer(
  overrides: Record<string, string | undefined> = {},
  options: { waitUntilHealthy?: boolean } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const env = apiEnv({ LOG_LEVEL: "info", ...overrides, PORT: String(port) });
  const server = new ServerProcess(runDist("server.js", env), port);
  observeOrigin(new URL(server.url("/")).origin);
  if (options.waitUntilHealthy ?? true) await untilHealthy(server);
  return server;
}

/** Runs migrate.js to completion. */
export async function runMigrate(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = runDist("migrate.js", env);
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stdout, stderr };
}
