// How long the API waits for each dependency before it gives up. A request whose dependency
// hangs (a frozen server, a dropped network) fails the call at its deadline and answers 503
// (Redis: carries on with per-process counts) instead of hanging. README's "Deadlines" section
// states the same bounds; the api tier freezes each dependency and times the answers.

/** PostgreSQL: opening a connection, waiting for a pooled one, and one query. */
export const DATABASE_DEADLINES = {
  connectMs: 2_000,
  acquireMs: 3_000,
  /** Server-side: PostgreSQL cancels a statement running longer. */
  statementMs: 4_000,
  /** Client-side: a query with no answer at all (the server hangs) fails after this. */
  queryMs: 5_000,
} as const;

/** Redis: connecting, and one command. */
export const REDIS_DEADLINES = { connectMs: 2_000, commandMs: 1_000 } as const;

/** S3: connecting, and one whole store operation (retries and reading the body included). */
export const STORAGE_DEADLINES = { connectMs: 2_000, operationMs: 5_000 } as const;

/** The longest a request waits for a hung dependency before it answers (README's bound). */
export const REQUEST_BOUND_MS = 10_000;
