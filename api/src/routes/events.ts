// Time-series events: batches of up to 1000 per call, stored in the events table (a TimescaleDB
// hypertable where the extension is installed) with their per-minute and per-hour totals
// (event-totals.ts), from which the per-bucket counts and averages are computed. A value is any
// JSON number; averages are summed as numeric, which no double can overflow, and converted to a
// double in JavaScript (clamped to the largest double), so no stored value can turn the
// statistics into an error.
import { z } from "zod";
import { recordAudit } from "../audit";
import { ApiError } from "../errors";
import { addBatchTotals, bucketStats } from "../event-totals";
import type { RouteContext } from "./context";
import { defineRoute, type RouteDefinition } from "./define";
import { Timestamp } from "./schemas";

const MAX_EVENTS_PER_CALL = 1000;
const MAX_ATTRIBUTES_BYTES = 8 * 1024;
const MAX_BUCKETS = 10_000;
const DEFAULT_RANGE_MS = 24 * 60 * 60 * 1000;
const EARLIEST = Date.UTC(1900, 0, 1);

const EventType = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/,
    "must be 1-100 letters, digits and . _ : - (starting with a letter or digit)",
  );

const EventTimestamp = Timestamp.refine(
  (value) => Date.parse(value) >= EARLIEST,
  "must not be before 1900",
);

const EventInput = z.strictObject({
  type: EventType,
  ts: EventTimestamp.optional().meta({ description: "When it happened; default: now." }),
  value: z.number().nullable().optional().meta({
    description: "Any JSON number (stored as a double precision float); averaged exactly.",
  }),
  attributes: z
    .record(z.string().max(100), z.unknown().meta({ description: "Any JSON value." }))
    .refine(
      (attributes) => JSON.stringify(attributes).length <= MAX_ATTRIBUTES_BYTES,
      `must be at most ${MAX_ATTRIBUTES_BYTES} bytes as JSON`,
    )
    .optional(),
});

const EventBatch = z
  .array(EventInput)
  .min(1, "must contain at least one event")
  .max(MAX_EVENTS_PER_CALL, `must contain at most ${MAX_EVENTS_PER_CALL} events`)
  .meta({ id: "EventBatch" });

const BUCKET_UNITS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const BUCKET_INTERVALS = { m: "minutes", h: "hours", d: "days" } as const;

const Bucket = z
  .string()
  .regex(/^[1-9]\d{0,3}[mhd]$/, "must be a number and a unit (m, h or d), e.g. 15m, 1h, 1d")
  .transform((spec) => {
    const unit = spec.slice(-1) as keyof typeof BUCKET_UNITS;
    const count = Number(spec.slice(0, -1));
    return { spec, ms: count * BUCKET_UNITS[unit], interval: `${count} ${BUCKET_INTERVALS[unit]}` };
  })
  .refine((bucket) => bucket.ms <= 366 * BUCKET_UNITS.d, "must be at most 366 days");

const StatsQuery = z.object({
  type: EventType.optional(),
  bucket: Bucket.prefault("1h"),
  from: Timestamp.optional().meta({ description: "Inclusive; default: 24 hours before `to`." }),
  to: Timestamp.optional().meta({ description: "Exclusive; default: now." }),
});

const Stats = z
  .object({
    type: z.string().nullable(),
    bucket: z.string(),
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    buckets: z.array(
      z.object({ start: z.iso.datetime(), count: z.number().int(), avg: z.number().nullable() }),
    ),
  })
  .meta({ id: "EventStats" });

/**
 * A numeric average (text) as a JSON number. Rounding to 15 digits may push an average of huge
 * values just past the largest double: clamped. NaN (only from NaN stored outside the API) is null.
 */
export function toDouble(numeric: string | null): number | null {
  if (numeric === null) return null;
  const value = Number(numeric);
  if (Number.isNaN(value)) return null;
  return Math.min(Math.max(value, -Number.MAX_VALUE), Number.MAX_VALUE);
}

function invalidQuery(path: string, message: string): ApiError {
  return new ApiError(400, "validation_failed", `The request is invalid: ${path}.`, {
    details: [{ path, message }],
  });
}

export function eventRoutes(ctx: RouteContext): RouteDefinition[] {
  const { db } = ctx;

  const ingest = defineRoute({
    method: "post",
    path: "/v1/events",
    operationId: "ingestEvents",
    summary: `Record up to ${MAX_EVENTS_PER_CALL} events`,
    description:
      "Records 1 to 1000 events in one call. An event without ts happened now; values are any JSON numbers.",
    tag: "events",
    auth: "any",
    body: EventBatch,
    responses: {
      202: {
        description: "Accepted.",
        schema: z.object({ accepted: z.number().int() }).meta({ id: "EventsAccepted" }),
      },
    },
    handler: async ({ req, res, body, principal }) => {
      const now = new Date();
      const ts = body.map((event) => (event.ts === undefined ? now : new Date(event.ts)));
      const types = body.map((event) => event.type);
      // pg sends null elements as NULL; knex's types leave arrays with nulls out.
      const values = body.map((event) => event.value ?? null) as unknown as number[];
      const attributes = body.map((event) =>
        event.attributes === undefined ? null : JSON.stringify(event.attributes),
      ) as unknown as string[];
      await db.transaction(async (trx) => {
        // Joining the one-row CTE sets keel.event_totals before the first row is inserted, so
        // the per-row trigger of migration 0005 stays off: the batch's totals are added below.
        await trx.raw(
          `WITH by_api AS MATERIALIZED (SELECT set_config('keel.event_totals', 'api', true))
           INSERT INTO events (org_id, ts, type, value, attributes)
           SELECT ?, e.ts, e.type, e.value, e.attributes
             FROM unnest(?::timestamptz[], ?::text[], ?::float8[], ?::jsonb[])
                  AS e(ts, type, value, attributes), by_api`,
          [principal.orgId, ts, types, values, attributes],
        );
        await recordAudit(trx, req, {
          action: "events.ingest",
          orgId: principal.orgId,
          details: { count: body.length },
        });
        await addBatchTotals(trx, principal.orgId, { ts, types, values });
      });
      res.status(202).json({ accepted: body.length });
    },
  });

  const stats = defineRoute({
    method: "get",
    path: "/v1/events/stats",
    operationId: "getEventStats",
    summary: "Count and average value of events per time bucket",
    description:
      "Counts and averages events per time bucket (UTC-aligned), over [from, to) (default: the last 24 hours), for one type or all. At most 10000 buckets per query.",
    tag: "events",
    auth: "any",
    query: StatsQuery,
    responses: { 200: { description: "One entry per non-empty bucket.", schema: Stats } },
    handler: async ({ res, query, principal }) => {
      const to = query.to === undefined ? Date.now() : Date.parse(query.to);
      const from = query.from === undefined ? to - DEFAULT_RANGE_MS : Date.parse(query.from);
      if (from >= to) throw invalidQuery("query.from", "must be before `to`");
      if ((to - from) / query.bucket.ms > MAX_BUCKETS) {
        throw invalidQuery("query.bucket", `the range must span at most ${MAX_BUCKETS} buckets`);
      }
      const rows = await bucketStats(db, {
        orgId: principal.orgId,
        from,
        to,
        bucket: query.bucket,
        type: query.type,
      });
      res.json({
        type: query.type ?? null,
        bucket: query.bucket.spec,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        buckets: rows.map((row) => ({
          start: row.start.toISOString(),
          count: Number(row.count),
          avg: toDouble(row.avg),
        })),
      });
    },
  });

  return [ingest, stats];
}
