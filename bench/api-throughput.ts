// Requests per second and p99 latency of the built API as production runs it (plain node,
// NODE_ENV=production, info logging, rate limits on but not hit) against bare Express on the same
// machine in the same run: targets alternate round by round, and each is reported as the median
// of its rounds with its ratio to bare Express, beside the CPU time the serving process spent per
// request (steadier than req/s on a busy machine), and beside bench/floors.ts: bare Express with
// only what a target needs. It also reports the API's resident memory: right after start, idle
// (nothing asked of it for IDLE_SECONDS), at its peak under load, and idle again after the load.
// Postgres, Redis and the S3 server are throwaway instances, as in the api tier.
// Usage: npx tsx bench/api-throughput.ts [--rounds 5] [--seconds 10] [--connections 50]
//        [--only TEXT] [--profile DIR] [--server-memory-mb 2048]
import { execFileSync, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { apiMemoryMb, apiNodeOptions } from "../provisioning/render/api";
import { apiEnv, createAccount, createSystem, testApp } from "../test/api/support/app";
import { track } from "../test/api/support/children";
import { setUpEnvironment, tearDownEnvironment, testEnv } from "../test/api/support/environment";
import { freePort, sleep } from "../test/api/support/ports";
import { IDLE_SECONDS, residentMb } from "./memory";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "50" },
    // Only the targets whose name contains this text (bare Express always runs).
    only: { type: "string", default: "" },
    // Writes a CPU profile of the API (node --cpu-prof) into this directory.
    profile: { type: "string" },
    // The API gets the node options and memory limit of an instance on a server with this RAM.
    "server-memory-mb": { type: "string", default: "2048" },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const SERVER_MEMORY_MB = Number(values["server-memory-mb"]);

interface Target {
  readonly name: string;
  readonly url: string;
  readonly headers?: Record<string, string>;
  /** A JSON body, sent with POST. */
  readonly body?: string;
  /** The process that serves the target, whose CPU time is counted. */
  readonly pid: number;
}

interface Round {
  readonly requestsPerSecond: number;
  readonly p99: number;
  readonly errors: number;
  /** CPU time the serving process spent per request, in microseconds. */
  readonly cpuPerRequestUs: number;
}

/** User and system CPU time a process has used, in microseconds (Linux counts 100 ticks a second). */
function cpuTimeUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function measure(target: Target, seconds: number): Promise<Round> {
  const cpuBefore = cpuTimeUs(target.pid);
  const result = await autocannon({
    url: target.url,
    headers: target.headers,
    ...(target.body === undefined ? {} : { method: "POST" as const, body: target.body }),
    connections: CONNECTIONS,
    duration: seconds,
  });
  return {
    requestsPerSecond: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    cpuPerRequestUs: (cpuTimeUs(target.pid) - cpuBefore) / result.requests.total,
  };
}

const median = (numbers: number[]): number => {
  const sorted = [...numbers].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

interface Reference {
  readonly url: (path: string) => string;
  readonly pid: number;
  readonly stop: () => void;
}

/** A reference server in its own node process, in production mode, answering on 127.0.0.1. */
async function startReference(
  args: string[],
  env: Record<string, string>,
  probe: string,
): Promise<Reference> {
  const port = await freePort();
  const child = track(
    spawn(process.execPath, args, {
      cwd: join(__dirname, "..", "api"),
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        NODE_ENV: "production",
        PORT: String(port),
        ...env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    }),
  );
  const url = (path: string): string => `http://127.0.0.1:${port}${path}`;
  await untilAnswers(url(probe));
  return { url, pid: child.pid ?? 0, stop: () => child.kill() };
}

/** Bare Express 5 answering `{"ok":true}`: the baseline. */
const startBareExpress = (): Promise<Reference> =>
  startReference(
    [
      "-e",
      `const express = require("express");
const app = express();
app.get("/", (req, res) => { res.json({ ok: true }); });
app.listen(Number(process.env.PORT), "127.0.0.1");`,
    ],
    {},
    "/",
  );

/** bench/floors.ts: what /health and the list cannot do without, on bare Express. */
const startFloors = (orgId: string): Promise<Reference> =>
  startReference(
    ["--import", "tsx", join(__dirname, "floors.ts")],
    { DATABASE_URL: testEnv().databaseUrl, ORG_ID: orgId },
    "/health",
  );

/**
 * The built API with production's settings; its log lines go to a file, as journald takes them
 * on the server (read by nobody during the run, so the benchmark pays no parsing).
 */
async function startApi(): Promise<{
  url: (path: string) => string;
  pid: number;
  memoryMb: () => { rss: number; peak: number };
  stop: () => Promise<unknown>;
}> {
  const port = await freePort();
  const log = openSync(join(testEnv().tmp, "api.log"), "w");
  const env = apiEnv({
    LOG_LEVEL: "info",
    PORT: String(port),
    RATE_LIMIT_PER_MINUTE: "1000000",
    EXPENSIVE_RATE_LIMIT_PER_MINUTE: "1000000",
    NODE_OPTIONS: apiNodeOptions(SERVER_MEMORY_MB),
  });
  const profiling =
    values.profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${values.profile}`];
  const child = track(
    spawn(process.execPath, [...profiling, join(testEnv().distDir, "server.js")], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      stdio: ["ignore", log, "inherit"],
    }),
  );
  closeSync(log);
  const url = (path: string): string => `http://127.0.0.1:${port}${path}`;
  await untilAnswers(url("/health"));
  // SIGINT: node writes the CPU profile on a signal it handles; the API stops on SIGINT too.
  return {
    url,
    pid: child.pid ?? 0,
    memoryMb: () => residentMb(readFileSync(`/proc/${child.pid ?? 0}/status`, "utf8")),
    stop: () => new Promise((resolve) => child.once("exit", resolve).kill("SIGINT")),
  };
}

async function untilAnswers(url: string): Promise<void> {
  for (let tries = 0; ; tries++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (tries > 400) throw new Error(`${url} did not answer`);
    await sleep(50);
  }
}

async function main(): Promise<void> {
  await setUpEnvironment();
  try {
    const bare = await startBareExpress();
    const server = await startApi();
    const app = testApp();
    const account = await createAccount(app);
    for (let i = 0; i < 10; i++) {
      await createSystem(app, account.apiKey, { name: `system ${i}`, purpose: "benchmark" });
    }
    const floors = await startFloors(account.orgId);
    const targets: Target[] = [
      { name: 'bare Express 5 `GET /` `{"ok":true}`', url: bare.url("/"), pid: bare.pid },
      { name: "Keel `GET /health`", url: server.url("/health"), pid: server.pid },
      {
        name: "floor: Express with Keel's headers and CORS, `GET /health`",
        url: floors.url("/health"),
        pid: floors.pid,
      },
      {
        name: "Keel `GET /v1/systems`, API key (10 systems)",
        url: server.url("/v1/systems"),
        headers: { "x-api-key": account.apiKey },
        pid: server.pid,
      },
      {
        name: "Keel `GET /v1/systems`, JWT (10 systems)",
        url: server.url("/v1/systems"),
        headers: { authorization: `Bearer ${account.token}` },
        pid: server.pid,
      },
      {
        name: "floor: Express with the list's query over pg (10 systems)",
        url: floors.url("/systems"),
        pid: floors.pid,
      },
      {
        name: "Keel `POST /v1/events`, 100 events, API key",
        url: server.url("/v1/events"),
        headers: { "x-api-key": account.apiKey, "content-type": "application/json" },
        body: JSON.stringify(
          Array.from({ length: 100 }, (_, i) => ({
            type: "benchmark",
            value: i,
            attributes: { host: `host-${i % 10}`, attempt: i },
          })),
        ),
        pid: server.pid,
      },
    ];
    const chosen = targets.filter((target, i) => i === 0 || target.name.includes(values.only));
    const started = server.memoryMb();
    await sleep(IDLE_SECONDS * 1000);
    const idle = server.memoryMb();
    for (const target of chosen) await measure(target, Math.min(3, SECONDS)); // warm-up
    const rounds = new Map<string, Round[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of chosen) rounds.get(target.name)?.push(await measure(target, SECONDS));
    }
    const baselineRounds = rounds.get(targets[0]!.name) ?? [];
    const baseline = median(baselineRounds.map((r) => r.requestsPerSecond));
    const baselineCpu = median(baselineRounds.map((r) => r.cpuPerRequestUs));
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
    }).trim();
    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}; ${new Date().toISOString()}; commit ${commit}`,
    );
    console.log(
      `autocannon: ${CONNECTIONS} connections, ${SECONDS} s, ${ROUNDS} alternating rounds (median), warmed`,
    );
    console.log(
      "\n| target | req/s | p99 ms | ratio to bare Express | server CPU µs/request | CPU ratio | errors |",
    );
    console.log("|---|---|---|---|---|---|---|");
    for (const target of chosen) {
      const measured = rounds.get(target.name) ?? [];
      const rps = median(measured.map((r) => r.requestsPerSecond));
      const cpu = median(measured.map((r) => r.cpuPerRequestUs));
      const errors = measured.reduce((sum, r) => sum + r.errors, 0);
      console.log(
        `| ${target.name} | ${Math.round(rps)} | ${median(measured.map((r) => r.p99))} | ${(rps / baseline).toFixed(2)} | ${Math.round(cpu)} | ${(baselineCpu / cpu).toFixed(2)} | ${errors} |`,
      );
    }
    const loaded = server.memoryMb();
    await sleep(IDLE_SECONDS * 1000);
    const rested = server.memoryMb();
    const mb = (n: number): string => `${n.toFixed(0)} MB`;
    console.log(
      `\nAPI memory (${apiNodeOptions(SERVER_MEMORY_MB)}; the unit's MemoryMax on a ${SERVER_MEMORY_MB} MB server: ${apiMemoryMb(SERVER_MEMORY_MB)} MB), RSS: ` +
        `${mb(started.rss)} right after start, ${mb(idle.rss)} idle ${IDLE_SECONDS} s later; ` +
        `peak ${mb(loaded.peak)} under load, ${mb(loaded.rss)} at its end, ${mb(rested.rss)} idle ${IDLE_SECONDS} s later`,
    );
    bare.stop();
    floors.stop();
    await server.stop();
  } finally {
    await tearDownEnvironment();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
