// Events on TimescaleDB, on the local platform: seeds N events (default 10 million) spread over
// the last 30 days for the admin key's org, straight into the hypertable with their per-minute
// totals (as the API's ingest keeps them); times GET /v1/events/stats over a day and over 30
// days, and the same statistics computed from events alone, and checks that both answer the
// same; then times ingest through the API (batches of B events from C clients for S seconds), and
// the same statements from pgbench, the database alone.
// Every request is made inside the stand-in against one API instance on loopback
// (bench/standin/client.mjs), so the times are the server's and not the host's tunnel.
//
// Needs the local platform with rate limits out of reach:
//   sudo npm run local -- --stack-file bench/Pulumi.bench.yaml
//   sudo npx tsx bench/events-standin.ts [--events N] [--skip-seed] [--runs R]
//                                        [--batch B ...] [--clients C] [--seconds S]
import { parseArgs } from "node:util";
import { EPOCH } from "../api/src/event-totals";
import { toDouble } from "../api/src/routes/events";
import { openPlatform, timed, type Platform } from "./standin/access";

const TYPES = 5;

interface Bucket {
  start: string;
  count: number;
  avg: number | null;
}

async function seed(platform: Platform, orgId: string, events: number): Promise<void> {
  await timed("remove the org's earlier events", () =>
    platform.psql(
      `DELETE FROM event_minutes WHERE org_id = '${orgId}';
       DELETE FROM event_hours WHERE org_id = '${orgId}';
       DELETE FROM events WHERE org_id = '${orgId}';`,
    ),
  );
  // keel.event_totals = 'api' keeps the per-row trigger off; the totals are added in one go
  // after, as the ingest route adds a batch's.
  await timed(`insert ${events.toLocaleString("en")} events over 30 days`, () =>
    platform.psql(
      `SET keel.event_totals = 'api';
       INSERT INTO events (org_id, ts, type, value)
       SELECT '${orgId}', now() - interval '30 days' + i * (interval '30 days' / ${events}),
              'bench.' || (i % ${TYPES}), CASE WHEN i % 10 = 0 THEN NULL ELSE random() * 1000 END
         FROM generate_series(1, ${events}) AS i;`,
    ),
  );
  for (const [table, width] of [
    ["event_minutes", "1 minute"],
    ["event_hours", "1 hour"],
  ] as const) {
    await timed(`add their totals to ${table}`, () =>
      platform.psql(
        `INSERT INTO ${table} (org_id, type, start, events, valued, value_sum)
         SELECT org_id, type, date_bin('${width}', ts, ${EPOCH}),
                count(*), count(value), coalesce(sum(value::numeric), 0)
           FROM events WHERE org_id = '${orgId}' GROUP BY 1, 2, 3;`,
      ),
    );
  }
  await timed("VACUUM ANALYZE", () =>
    platform.psql(
      "VACUUM ANALYZE events; VACUUM ANALYZE event_minutes; VACUUM ANALYZE event_hours;",
    ),
  );
}

/** The statistics computed from events alone, as the API answered them before event_minutes. */
async function rawStats(
  platform: Platform,
  orgId: string,
  query: { from: string; to: string; interval: string; type: string | null },
): Promise<{ buckets: Bucket[]; ms: number }> {
  const sql = `SELECT date_bin('${query.interval}'::interval, ts, ${EPOCH}) AS start,
                      count(*) AS count, avg(value::numeric) AS avg
                 FROM events
                WHERE org_id = '${orgId}' AND ts >= '${query.from}' AND ts < '${query.to}'
                      ${query.type === null ? "" : `AND type = '${query.type}'`}
                GROUP BY start ORDER BY start`;
  const output = await platform.psql(
    `\\timing on
     SELECT json_agg(json_build_object(
              'start', to_char(start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
              'count', count, 'avg', avg::text) ORDER BY start)
       FROM (${sql}) AS raw;`,
  );
  const [json = "[]", timing = ""] = output.split("\n");
  const rows = (JSON.parse(json) ?? []) as { start: string; count: number; avg: string | null }[];
  return {
    buckets: rows.map((row) => ({ start: row.start, count: row.count, avg: toDouble(row.avg) })),
    ms: Number(/Time: ([\d.]+) ms/.exec(timing)?.[1]),
  };
}

/**
 * What ingest could reach if the API cost nothing: pgbench runs, per batch, the statements the
 * ingest route runs (the events, the audit row, the minute and hour totals, in one transaction),
 * with the events made by generate_series inside PostgreSQL instead of sent by a client.
 */
async function databaseIngest(
  platform: Platform,
  orgId: string,
  run: { batch: number; clients: number; seconds: number },
): Promise<{ eventsPerSecond: number; latencyMs: number }> {
  const events = `generate_series(1, ${run.batch}) AS i`;
  const ts = "now() - (i % 60) * interval '1 second'";
  const totals = (table: string, width: string) =>
    `INSERT INTO ${table} AS t (org_id, type, start, events, valued, value_sum)
     SELECT '${orgId}', 'bench.' || (i % ${TYPES}), date_bin('${width}', ${ts}, ${EPOCH}),
            count(*), count(i), sum(i::numeric)
       FROM ${events} GROUP BY 2, 3 ORDER BY 2, 3
     ON CONFLICT (org_id, type, start) DO UPDATE
        SET events = t.events + excluded.events, valued = t.valued + excluded.valued,
            value_sum = t.value_sum + excluded.value_sum;`;
  const script = [
    "BEGIN;",
    `WITH by_api AS MATERIALIZED (SELECT set_config('keel.event_totals', 'api', true))
     INSERT INTO events (org_id, ts, type, value, attributes)
     SELECT '${orgId}', ${ts}, 'bench.' || (i % ${TYPES}), i, '{"host": "bench"}'::jsonb
       FROM ${events}, by_api;`,
    `INSERT INTO audit_events (org_id, action, actor_type, details)
     VALUES ('${orgId}', 'audit.events.ingest', 'api_key', '{"count": ${run.batch}}');`,
    totals("event_minutes", "1 minute"),
    totals("event_hours", "1 hour"),
    "COMMIT;",
  ].join("\n");
  const file = "/tmp/keel-bench-ingest.sql";
  await platform.run(`install -m 0644 /dev/stdin ${file}`, `${script}\n`);
  const out = await platform.run(
    `runuser -u postgres -- /usr/lib/postgresql/17/bin/pgbench -n -c ${run.clients} -j 2 -T ${run.seconds} -f ${file} keel; rm -f ${file}`,
  );
  const number = (pattern: RegExp): number => Number(pattern.exec(out)?.[1] ?? NaN);
  return {
    eventsPerSecond: number(/^tps = ([\d.]+)/m) * run.batch,
    latencyMs: number(/^latency average = ([\d.]+) ms/m),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: "string", default: "10000000" },
      "skip-seed": { type: "boolean", default: false },
      runs: { type: "string", default: "30" },
      batch: { type: "string", multiple: true, default: ["100", "1000"] },
      clients: { type: "string", default: "8" },
      seconds: { type: "string", default: "20" },
    },
  });
  const platform = await openPlatform();
  const { client } = platform;

  const orgId = await platform.psql("SELECT id FROM orgs WHERE is_default");
  if (!values["skip-seed"]) await seed(platform, orgId, Number(values.events));
  const count = (table: string) =>
    platform.psql(`SELECT count(*) FROM ${table} WHERE org_id = '${orgId}'`);
  console.log(
    `rows of the org: events ${await count("events")}, event_minutes ${await count("event_minutes")},` +
      ` event_hours ${await count("event_hours")}`,
  );

  // An end that is not on a minute, so that the partial minutes are part of every answer.
  const to = new Date(Math.floor(Date.now() / 1000) * 1000 - 12_345).toISOString();
  const day = new Date(Date.parse(to) - 86_400_000).toISOString();
  const month = new Date(Date.parse(to) - 30 * 86_400_000).toISOString();
  const cases = [
    { name: "1 day, hourly, all types", from: day, bucket: "1h", interval: "1 hours", type: null },
    {
      name: "1 day, hourly, one type",
      from: day,
      bucket: "1h",
      interval: "1 hours",
      type: "bench.1",
    },
    {
      name: "30 days, daily, all types",
      from: month,
      bucket: "1d",
      interval: "1 days",
      type: null,
    },
    {
      name: "30 days, hourly, all types",
      from: month,
      bucket: "1h",
      interval: "1 hours",
      type: null,
    },
    {
      name: "30 days, daily, one type",
      from: month,
      bucket: "1d",
      interval: "1 days",
      type: "bench.1",
    },
  ];
  console.log("\nGET /v1/events/stats (one API instance, inside the stand-in)");
  for (const c of cases) {
    const api = await client(`stats ${c.from} ${to} ${c.bucket} ${c.type ?? "-"} ${values.runs}`);
    const raw = await rawStats(platform, orgId, {
      from: c.from,
      to,
      interval: c.interval,
      type: c.type,
    });
    const same = JSON.stringify(api.buckets) === JSON.stringify(raw.buckets);
    console.log(
      `${c.name.padEnd(28)} p50 ${Number(api.p50).toFixed(1)} ms, p99 ${Number(api.p99).toFixed(1)} ms;` +
        ` from events alone (psql) ${raw.ms.toFixed(0)} ms; ${raw.buckets.length} buckets, ` +
        (same ? "identical" : "DIFFERENT"),
    );
    if (!same) process.exitCode = 1;
  }

  console.log(`\nPOST /v1/events (${values.clients} clients, ${values.seconds} s each)`);
  for (const batch of values.batch) {
    const result = await client(`ingest ${batch} ${values.clients} ${values.seconds}`);
    console.log(
      `batches of ${batch.padStart(4)}: ${Math.round(Number(result.eventsPerSecond)).toLocaleString("en")} events/s,` +
        ` p50 ${Number(result.p50).toFixed(0)} ms, p99 ${Number(result.p99).toFixed(0)} ms per batch,` +
        ` ${String(result.failed)} failed of ${String(result.batches)}`,
    );
    if (Number(result.failed) > 0) process.exitCode = 1;
  }

  console.log(
    `\nthe database alone, the same statements per batch (pgbench, ${values.clients} clients, ${values.seconds} s each)`,
  );
  for (const batch of values.batch) {
    const result = await databaseIngest(platform, orgId, {
      batch: Number(batch),
      clients: Number(values.clients),
      seconds: Number(values.seconds),
    });
    console.log(
      `batches of ${batch.padStart(4)}: ${Math.round(result.eventsPerSecond).toLocaleString("en")} events/s,` +
        ` ${result.latencyMs.toFixed(0)} ms per batch on average`,
    );
  }
  await platform.close();
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
