// Redis (rate limits and login lockouts). Commands never queue while Redis is away: they fail at
// once, callers fall back to per-process memory, and the client keeps reconnecting in the
// background, so the API recovers by itself when Redis returns.
import { Redis } from "ioredis";
import { REDIS_DEADLINES } from "./deadlines";
import type { Logger } from "./logger";

export type RedisClient = Redis;

export function createRedis(url: string, logger: Logger): RedisClient {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: REDIS_DEADLINES.connectMs,
    commandTimeout: REDIS_DEADLINES.commandMs,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  // Log transitions, not every failed reconnection attempt.
  let healthy = true;
  client.on("ready", () => {
    if (!healthy) logger.info("redis connection restored");
    healthy = true;
  });
  client.on("error", (error: Error) => {
    if (healthy) logger.warn({ err: error }, "redis unavailable; using per-process fallbacks");
    healthy = false;
  });
  return client;
}

/** True when commands can be sent right now. */
export function redisReady(client: RedisClient): boolean {
  return client.status === "ready";
}
