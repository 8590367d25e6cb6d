// The whole platform on the local stand-in, sized as the $6 droplet (1 GB, one API instance):
// 1. /health and an authenticated GET /v1/systems (10 systems), straight to the API instance and
//    through nginx and TLS, from inside the stand-in: req/s, p50, p99 and the ratio of the two;
// 2. memory: with --limit-mb N every process of the stand-in is moved into a memory cgroup of N MB
//    (cgroup v1 on this host), then ingest, statistics and reads run together for --seconds while
//    each service's proportional memory (PSS) is sampled; prints each service's memory idle and at
//    its peak, the API instance's resident memory (RSS) idle and at its peak, the cgroup's peak
//    and limit hits, and whether any service restarted or lost its main process.
//
// The stand-in's disk is memory (its root, the volume included, is a tmpfs on the host), and what
// the confined processes write to it counts against the cgroup as shared memory that nothing can
// reclaim; a droplet's disk is a block device. So seed the events first (bench/events-standin.ts,
// same stand-in): PostgreSQL then recycles WAL segments written outside the cgroup, instead of
// writing up to max_wal_size of new ones into it. The cgroup's line gives that shared memory.
//
//   sudo npm run local -- --stack-file bench/Pulumi.bench-1gb.yaml
//   sudo npx tsx bench/events-standin.ts
//   sudo npx tsx bench/platform-standin.ts [--seconds S] [--limit-mb N]
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MONITORING_UNITS } from "../provisioning/render/monitoring";
import { IDLE_SECONDS, residentMb } from "./memory";
import { API_URL, openPlatform, type Platform } from "./standin/access";

const EDGE = "https://api.standin.test";
const MEMORY_CGROUP = "/sys/fs/cgroup/memory/keel-bench";
const RESTARTED = [
  "postgresql@17-main.service",
  "redis-server.service",
  "nginx.service",
  "keel-api@1.service",
  ...MONITORING_UNITS,
];

// Proportional set size (kB) per systemd unit: shared pages (Postgres's shared buffers) are split
// between the processes that share them, so the units add up to what the machine holds.
const PSS_BY_UNIT = String.raw`for p in /proc/[0-9]*; do
  unit=$(sed -n 's#^0::.*/\([^/]*\.\(service\|scope\)\)$#\1#p' "$p/cgroup" 2>/dev/null)
  pss=$(awk '/^Pss:/ {print $2}' "$p/smaps_rollup" 2>/dev/null)
  [ -n "$unit" ] && [ -n "$pss" ] && echo "$unit $pss"
done | awk '{s[$1] += $2} END {for (u in s) print u, s[u]}'`;

async function pssByUnit(platform: Platform): Promise<Map<string, number>> {
  const lines = (await platform.run(PSS_BY_UNIT)).split("\n").filter(Boolean);
  return new Map(
    lines.map((line) => {
      const [unit = "", kb = "0"] = line.split(" ");
      return [unit, Number(kb) / 1024];
    }),
  );
}

/** The API instance's resident memory now and at its peak since it started, MB. */
async function apiMemory(platform: Platform): Promise<{ rss: number; peak: number }> {
  return residentMb(
    await platform.run(
      'cat "/proc/$(systemctl show --property=MainPID --value keel-api@1.service)/status"',
    ),
  );
}

/** Unit → "main PID, restarts", to tell afterwards whether anything was killed or restarted. */
async function serviceLives(platform: Platform): Promise<Map<string, string>> {
  const out = await platform.run(
    "systemctl show --type=service --state=running --property=Id,MainPID,NRestarts '*'",
  );
  const lives = new Map<string, string>();
  for (const block of out.split("\n\n")) {
    const fields = new Map(block.split("\n").map((line) => line.split("=", 2) as [string, string]));
    const id = fields.get("Id");
    if (id !== undefined) {
      lives.set(id, `pid ${fields.get("MainPID")}, restarts ${fields.get("NRestarts")}`);
    }
  }
  return lives;
}

/**
 * Every process of the stand-in into one memory cgroup of `limitMb` (cgroup v1). Memory they hold
 * already stays charged where it was (this kernel refuses move_charge_at_immigrate), so the
 * services restart afterwards and start inside the limit.
 */
function confineStandin(limitMb: number): void {
  const unified = "/sys/fs/cgroup/unified";
  const runGroup = readdirSync(unified).find((name) => name.startsWith("keel-standin-"));
  if (runGroup === undefined || !existsSync("/sys/fs/cgroup/memory")) {
    throw new Error("--limit-mb needs a running stand-in and the cgroup v1 memory controller");
  }
  mkdirSync(MEMORY_CGROUP, { recursive: true });
  writeFileSync(join(MEMORY_CGROUP, "memory.limit_in_bytes"), String(limitMb * 1024 * 1024));
  const pids = new Set<string>();
  const collect = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) collect(join(dir, entry.name));
      else if (entry.name === "cgroup.procs") {
        for (const pid of readFileSync(join(dir, entry.name), "utf8").split("\n")) {
          if (pid) pids.add(pid);
        }
      }
    }
  };
  collect(join(unified, runGroup));
  for (const pid of pids) {
    try {
      writeFileSync(join(MEMORY_CGROUP, "cgroup.procs"), pid);
    } catch {
      // A process that has exited since.
    }
  }
  console.log(`moved ${pids.size} processes of ${runGroup} into a ${limitMb} MB memory cgroup`);
}

/** One counter of the cgroup's memory.stat, in bytes. */
const cgroupStat = (name: string): number =>
  Number(
    new RegExp(`^${name} (\\d+)$`, "m").exec(
      readFileSync(join(MEMORY_CGROUP, "memory.stat"), "utf8"),
    )?.[1],
  );

const cgroupValue = (file: string) =>
  Number(readFileSync(join(MEMORY_CGROUP, file), "utf8").trim());

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "60" },
      "limit-mb": { type: "string" },
      connections: { type: "string", default: "32" },
    },
  });
  const platform = await openPlatform();
  const orgId = await platform.psql("SELECT id FROM orgs WHERE is_default");
  await platform.psql(
    `INSERT INTO systems (org_id, name, purpose)
     SELECT '${orgId}', 'bench ' || i, 'benchmark'
       FROM generate_series(1, 10 - (SELECT count(*) FROM systems WHERE org_id = '${orgId}')) AS i`,
  );

  console.log(
    `\nstraight to the API instance and through nginx + TLS (${values.connections} connections, 10 s)`,
  );
  for (const path of ["/health", "/v1/systems"]) {
    const direct = await platform.client(`load ${API_URL}${path} - ${values.connections} 10`);
    const edge = await platform.client(
      `load ${EDGE}${path} ${platform.caFile} ${values.connections} 10`,
    );
    const line = (label: string, r: Record<string, unknown>) =>
      `  ${label.padEnd(14)} ${Math.round(Number(r.requestsPerSecond))} req/s, p50 ${Number(r.p50).toFixed(1)} ms, p99 ${Number(r.p99).toFixed(1)} ms, ${String(r.failed)} failed`;
    console.log(`${path}\n${line("direct", direct)}\n${line("nginx + TLS", edge)}`);
    console.log(
      `  ratio          ${(Number(edge.requestsPerSecond) / Number(direct.requestsPerSecond)).toFixed(2)}`,
    );
  }

  if (values["limit-mb"] !== undefined) {
    confineStandin(Number(values["limit-mb"]));
    await platform.run(`systemctl restart ${RESTARTED.join(" ")}`);
    await platform.run(
      `for i in $(seq 60); do curl -fs -o /dev/null ${API_URL}/ready && exit 0; sleep 1; done; exit 1`,
    );
  }
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const idle = await pssByUnit(platform);
  const apiIdle = await apiMemory(platform);
  const before = await serviceLives(platform);
  const seconds = Number(values.seconds);
  console.log(`\nmemory: ingest, statistics and reads together for ${seconds} s`);
  const peak = new Map(idle);
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [unit, mb] of await pssByUnit(platform)) {
        peak.set(unit, Math.max(peak.get(unit) ?? 0, mb));
      }
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  })();
  const now = Date.now();
  const [ingest, reads] = await Promise.all([
    platform.client(`ingest 1000 2 ${seconds}`),
    platform.client(`load ${EDGE}/v1/systems ${platform.caFile} 16 ${seconds}`),
    platform.client(
      `stats ${new Date(now - 30 * 86_400_000).toISOString()} ${new Date(now).toISOString()} 1h - ${seconds * 5}`,
    ),
  ]);
  sampling = false;
  await sampler;
  console.log(
    `  ingest ${Math.round(Number(ingest.eventsPerSecond))} events/s (${String(ingest.failed)} failed),` +
      ` reads ${Math.round(Number(reads.requestsPerSecond))} req/s (${String(reads.failed)} failed)`,
  );
  const after = await serviceLives(platform);
  const rows = [...peak.entries()].sort((a, b) => b[1] - a[1]).filter(([, mb]) => mb >= 1);
  console.log("  unit                                   idle MB  peak MB");
  for (const [unit, mb] of rows) {
    console.log(
      `  ${unit.padEnd(38)} ${(idle.get(unit) ?? 0).toFixed(0).padStart(7)}  ${mb.toFixed(0).padStart(7)}`,
    );
  }
  const sum = (map: Map<string, number>) => [...map.values()].reduce((a, b) => a + b, 0);
  console.log(
    `  all units                              ${sum(idle).toFixed(0).padStart(7)}  ${sum(peak).toFixed(0).padStart(7)} (sum of peaks)`,
  );
  if (values["limit-mb"] !== undefined) {
    console.log(
      `  memory cgroup: peak ${(cgroupValue("memory.max_usage_in_bytes") / 2 ** 20).toFixed(0)} MB` +
        ` of ${values["limit-mb"]} MB (page cache included), limit hit ${cgroupValue("memory.failcnt")} times;` +
        ` ${(cgroupStat("shmem") / 2 ** 20).toFixed(0)} MB of it at the end is files written to the stand-in's tmpfs`,
    );
  }
  const apiLoaded = await apiMemory(platform);
  console.log(
    `  keel-api@1 RSS: ${apiIdle.rss.toFixed(0)} MB idle (nothing asked for ${IDLE_SECONDS} s), peak ${apiLoaded.peak.toFixed(0)} MB since it started`,
  );
  const changed = [...before].filter(([unit, life]) => after.get(unit) !== life);
  console.log(
    changed.length === 0
      ? `  every running service kept its main process; none restarted (${before.size} services)`
      : `  CHANGED: ${changed.map(([unit, life]) => `${unit} ${life} → ${after.get(unit) ?? "gone"}`).join("; ")}`,
  );
  if (changed.length > 0) process.exitCode = 1;
  await platform.close();
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
