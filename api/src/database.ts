// PostgreSQL through knex + pg. Deadlines (deadlines.ts) keep every failure short: a database
// that is down, unreachable or hung turns into a quick error (answered 503) instead of a request
// that hangs.
import knex, { type Knex } from "knex";
import { DATABASE_DEADLINES } from "./deadlines";
import type { Logger } from "./logger";

export type Database = Knex;

export interface DatabaseOptions {
  readonly url: string;
  /** Where knex's own warnings go (it would print them to stdout as plain text). */
  readonly logger: Logger;
  /** Largest number of pooled connections. */
  readonly poolMax?: number;
}

export function createDatabase(options: DatabaseOptions): Database {
  return knex({
    client: "pg",
    connection: {
      connectionString: options.url,
      application_name: "keel-api",
      connectionTimeoutMillis: DATABASE_DEADLINES.connectMs,
      statement_timeout: DATABASE_DEADLINES.statementMs,
      query_timeout: DATABASE_DEADLINES.queryMs,
      idle_in_transaction_session_timeout: 30_000,
    },
    pool: { min: 0, max: options.poolMax ?? 10, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: DATABASE_DEADLINES.acquireMs,
    log: {
      warn: (message: unknown) => options.logger.warn({ knex: String(message) }, "knex warning"),
      error: (message: unknown) => options.logger.error({ knex: String(message) }, "knex error"),
      deprecate: (method: string, alternative: string) =>
        options.logger.warn({ method, alternative }, "knex deprecation"),
      debug: (message: unknown) => options.logger.debug({ knex: message }, "knex debug"),
    },
  });
}

// Network errors and the PostgreSQL error classes that mean "the server cannot serve this now":
// 08 connection exception, 53300 too many connections, 57014 statement timeout,
// 57P01-57P03 shutdown / cannot connect now.
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "53300",
  "57014",
  "57P01",
  "57P02",
  "57P03",
]);

/** True when `error` says the database cannot be reached right now (as opposed to a bad query). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "KnexTimeoutError") return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) {
    return true;
  }
  if (
    /Connection terminated|connection timeout|Query read timeout|Client has encountered a connection error/i.test(
      error.message,
    )
  ) {
    return true;
  }
  return error instanceof AggregateError && error.errors.some(isDatabaseUnavailable);
}

/** The database's address for messages: never the credentials. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || "(socket)"}:${parsed.port || "5432"}${parsed.pathname}`;
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}
