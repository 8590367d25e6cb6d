// Runs inside the stand-in (its own node), next to the API, so that the times are the server's
// and not the host's tunnel. Prints one JSON line.
//   node client.mjs KEY_FILE API_URL stats FROM TO BUCKET TYPE|- RUNS
//   node client.mjs KEY_FILE API_URL ingest BATCH CLIENTS SECONDS
//   node client.mjs KEY_FILE API_URL load URL CA_FILE|- CONNECTIONS SECONDS  (GET; the key is sent)
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

const [keyFile, API, mode, ...args] = process.argv.slice(2);
const headers = { "x-api-key": readFileSync(keyFile, "utf8").trim() };

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function stats([from, to, bucket, type, runs]) {
  const query = new URLSearchParams({ from, to, bucket, ...(type === "-" ? {} : { type }) });
  const times = [];
  let body;
  for (let i = 0; i < Number(runs); i++) {
    const started = performance.now();
    const response = await fetch(`${API}/v1/events/stats?${query}`, { headers });
    body = await response.json();
    times.push(performance.now() - started);
    if (response.status !== 200)
      throw new Error(`stats: ${response.status} ${JSON.stringify(body)}`);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), buckets: body.buckets };
}

async function ingest([batch, clients, seconds]) {
  const types = ["bench.a", "bench.b", "bench.c", "bench.d", "bench.e"];
  const until = performance.now() + Number(seconds) * 1000;
  const latencies = [];
  let events = 0;
  let failed = 0;
  const client = async (c) => {
    let n = 0;
    while (performance.now() < until) {
      const body = JSON.stringify(
        Array.from({ length: Number(batch) }, (_, i) => ({
          type: types[(c + n + i) % types.length],
          value: (n * 31 + i) % 1000,
          attributes: { client: c },
        })),
      );
      const started = performance.now();
      const response = await fetch(`${API}/v1/events`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
      });
      await response.arrayBuffer();
      latencies.push(performance.now() - started);
      if (response.status === 202) events += Number(batch);
      else failed += 1;
      n += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Number(clients) }, (_, c) => client(c)));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    batches: latencies.length,
    failed,
    eventsPerSecond: events / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

/** Requests one after another on each of CONNECTIONS kept-alive connections, for SECONDS. */
async function load([url, caFile, connections, seconds]) {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  const agent = new (secure ? https : http).Agent({
    keepAlive: true,
    maxSockets: Number(connections),
    ...(secure ? { ca: readFileSync(caFile, "utf8") } : {}),
  });
  const get = () =>
    new Promise((resolve, reject) => {
      const req = (secure ? https : http).get(target, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      });
      req.on("error", reject);
    });
  const warmUntil = performance.now() + 2000;
  const until = warmUntil + Number(seconds) * 1000;
  const latencies = [];
  let failed = 0;
  const connection = async () => {
    while (performance.now() < until) {
      const started = performance.now();
      const status = await get();
      if (started < warmUntil) continue;
      latencies.push(performance.now() - started);
      if (status !== 200) failed += 1;
    }
  };
  await Promise.all(Array.from({ length: Number(connections) }, connection));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requestsPerSecond: latencies.length / Number(seconds),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    failed,
  };
}

const modes = { stats, ingest, load };
const result = await modes[mode](args);
process.stdout.write(`${JSON.stringify(result)}\n`);
