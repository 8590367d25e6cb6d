// GET /ready: one check per dependency, each time-boxed to one second so that /ready answers
// promptly even when a dependency hangs instead of failing.
import type { Database } from "./database";
import { redisReady, type RedisClient } from "./redis";
import type { EvidenceStore } from "./storage/evidence-store";

const CHECK_TIMEOUT_MS = 1_000;

export interface ReadinessChecks {
  readonly database: boolean;
  readonly redis: boolean;
  readonly storage: boolean;
}

/** Runs `check` with an abort signal; true only if it resolves within `ms`. */
async function timeBoxed(
  check: (signal: AbortSignal) => Promise<unknown>,
  ms = CHECK_TIMEOUT_MS,
): Promise<boolean> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(false);
    }, ms);
  });
  const outcome = check(controller.signal).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([outcome, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(deps: {
  readonly db: Database;
  readonly redis: RedisClient;
  readonly store: EvidenceStore;
}): Promise<ReadinessChecks> {
  const [database, redis, storage] = await Promise.all([
    timeBoxed(() => deps.db.raw("SELECT 1")),
    timeBoxed(() =>
      redisReady(deps.redis) ? deps.redis.ping() : Promise.reject(new Error("not connected")),
    ),
    timeBoxed((signal) => deps.store.check(signal)),
  ]);
  return { database, redis, storage };
}
