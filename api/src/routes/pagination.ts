// Keyset pagination on (created_at, id), newest first. The cursor carries the last row's
// timestamp at microsecond precision so that no row is skipped or repeated between pages.
import type { Knex } from "knex";
import { ApiError } from "../errors";

export interface PageRequest {
  readonly limit: number;
  readonly cursor?: string | undefined;
}

export interface PageResult<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export const CURSOR_COLUMN = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts`;

/** False for a well-formed but impossible time such as 2024-02-30, which PostgreSQL refuses. */
function isRealInstant(ts: string): boolean {
  const parsed = Date.parse(`${ts.slice(0, 19)}Z`);
  return !Number.isNaN(parsed) && new Date(parsed).toISOString().slice(0, 19) === ts.slice(0, 19);
}

function decode(cursor: string): { ts: string; id: string } {
  const [ts, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const valid =
    ts !== undefined &&
    id !== undefined &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(ts) &&
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) &&
    isRealInstant(ts);
  if (!valid) {
    throw new ApiError(400, "validation_failed", "The request is invalid: query.cursor.", {
      details: [{ path: "query.cursor", message: "is not a cursor returned by this API" }],
    });
  }
  return { ts, id };
}

/** One page of `query`'s rows (with `columns`), newest first, presented by `present`. */
export async function fetchPage<R extends { id: string }, T>(
  db: Knex,
  query: Knex.QueryBuilder,
  page: PageRequest,
  columns: readonly string[],
  present: (row: R) => T,
): Promise<PageResult<T>> {
  if (page.cursor !== undefined) {
    const { ts, id } = decode(page.cursor);
    void query.whereRaw("(created_at, id) < (?::timestamptz, ?::uuid)", [ts, id]);
  }
  const rows = (await query
    .select([...columns, db.raw(CURSOR_COLUMN)])
    .orderBy([
      { column: "created_at", order: "desc" },
      { column: "id", order: "desc" },
    ])
    .limit(page.limit + 1)) as (R & { cursor_ts: string })[];
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  const nextCursor =
    rows.length > page.limit && last !== undefined
      ? Buffer.from(`${last.cursor_ts}|${last.id}`, "utf8").toString("base64url")
      : null;
  return { items: items.map(present), nextCursor };
}
