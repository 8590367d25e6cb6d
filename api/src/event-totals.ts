// Per-minute and per-hour totals of events (migration 0005): what the ingest adds in its own
// transaction, and the statistics read from them. A range is answered from whole hours (when the
// bucket is a multiple of an hour), whole minutes and, at either end, the events of partial
// minutes; sums are exact (numeric), so the answer is the one a query over events alone gives.
import type { Knex } from "knex";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
export const EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'";

/** The totals tables, finest first: the order in which a batch's totals are added. */
const LEVELS = [
  { table: "event_minutes", width: "1 minute" },
  { table: "event_hours", width: "1 hour" },
] as const;

type Range = readonly [from: number, to: number];

interface RangeSplit {
  readonly hours: Range;
  readonly minutes: readonly [Range, Range];
  readonly events: readonly [Range, Range];
}

const ceilTo = (time: number, unit: number) => Math.ceil(time / unit) * unit;
const floorTo = (time: number, unit: number) => Math.floor(time / unit) * unit;
const clamp = (value: number, low: number, high: number) => Math.min(Math.max(value, low), high);

/**
 * Splits [from, to) into whole hours in the middle, whole minutes around them and partial
 * minutes at the ends; every part is [start, end) and may be empty. Hours only when every hour
 * lies within one bucket, i.e. the bucket is a multiple of an hour (buckets start at the epoch).
 */
function splitRange(from: number, to: number, bucketMs: number): RangeSplit {
  const minutesFrom = Math.min(ceilTo(from, MINUTE_MS), to);
  const minutesTo = Math.max(floorTo(to, MINUTE_MS), minutesFrom);
  const hourly = bucketMs % HOUR_MS === 0;
  const hoursFrom = hourly ? clamp(ceilTo(from, HOUR_MS), minutesFrom, minutesTo) : minutesFrom;
  const hoursTo = hourly ? clamp(floorTo(to, HOUR_MS), hoursFrom, minutesTo) : minutesFrom;
  return {
    hours: [hoursFrom, hoursTo],
    minutes: [
      [minutesFrom, hoursFrom],
      [hoursTo, minutesTo],
    ],
    events: [
      [from, minutesFrom],
      [minutesTo, to],
    ],
  };
}

export interface StatsRow {
  readonly start: Date;
  readonly count: string;
  readonly avg: string | null;
}

/** Count and exact average (numeric, as text) per bucket, non-empty buckets only. */
export async function bucketStats(
  db: Knex,
  query: {
    readonly orgId: string;
    readonly from: number;
    readonly to: number;
    readonly bucket: { readonly ms: number; readonly interval: string };
    readonly type: string | undefined;
  },
): Promise<StatsRow[]> {
  const { hours, minutes, events } = splitRange(query.from, query.to, query.bucket.ms);
  const ofType = query.type === undefined ? "" : "AND type = ?";
  const typed = query.type === undefined ? [] : [query.type];
  const dates = (ranges: readonly Range[]) => ranges.flat().map((time) => new Date(time));
  const result = await db.raw<{ rows: StatsRow[] }>(
    `WITH parts AS (
       SELECT start AS at, events, valued, value_sum
         FROM event_hours
        WHERE org_id = ? AND start >= ? AND start < ? ${ofType}
       UNION ALL
       SELECT start, events, valued, value_sum
         FROM event_minutes
        WHERE org_id = ? AND ((start >= ? AND start < ?) OR (start >= ? AND start < ?)) ${ofType}
       UNION ALL
       SELECT ts, 1, (value IS NOT NULL)::int, value::numeric
         FROM events
        WHERE org_id = ? AND ((ts >= ? AND ts < ?) OR (ts >= ? AND ts < ?)) ${ofType}
     )
     SELECT date_bin(?::interval, at, ${EPOCH}) AS start,
            sum(events) AS count, sum(value_sum) / nullif(sum(valued), 0) AS avg
       FROM parts
      GROUP BY 1
      ORDER BY 1`,
    [
      ...[query.orgId, ...dates([hours]), ...typed],
      ...[query.orgId, ...dates(minutes), ...typed],
      ...[query.orgId, ...dates(events), ...typed],
      query.bucket.interval,
    ],
  );
  return result.rows;
}

/**
 * Adds a batch's totals, inside the ingest's transaction. Last in it, so that concurrent batches
 * wait on a busy minute's or hour's row only until this commits; minutes before hours and each
 * in a fixed order, so that two batches never wait on each other.
 */
export async function addBatchTotals(
  trx: Knex.Transaction,
  orgId: string,
  batch: { readonly ts: Date[]; readonly types: string[]; readonly values: number[] },
): Promise<void> {
  for (const { table, width } of LEVELS) {
    await trx.raw(
      `INSERT INTO ${table} AS t (org_id, type, start, events, valued, value_sum)
       SELECT ?, e.type, date_bin('${width}', e.ts, ${EPOCH}),
              count(*), count(e.value), coalesce(sum(e.value::numeric), 0)
         FROM unnest(?::timestamptz[], ?::text[], ?::float8[]) AS e(ts, type, value)
        GROUP BY 2, 3
        ORDER BY 2, 3
       ON CONFLICT (org_id, type, start) DO UPDATE
          SET events = t.events + excluded.events,
              valued = t.valued + excluded.valued,
              value_sum = t.value_sum + excluded.value_sum`,
      [orgId, batch.ts, batch.types, batch.values],
    );
  }
}
