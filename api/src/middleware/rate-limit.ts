// Rate limits kept in Redis (rate-limit-redis), so every API process shares one count per caller:
// per API key or user when the request carries valid credentials, per client address otherwise.
// While Redis is unavailable the counts fall back to this process's memory; the Redis store is
// picked up again as soon as the connection is back.
import type { RequestHandler } from "express";
import {
  MemoryStore,
  ipKeyGenerator,
  rateLimit,
  type ClientRateLimitInfo,
  type IncrementResponse,
  type Options,
  type Store,
} from "express-rate-limit";
import { RedisStore, type RedisReply } from "rate-limit-redis";
import { tooManyRequests } from "../errors";
import type { Logger } from "../logger";
import { redisReady, type RedisClient } from "../redis";
import { callerKey } from "./authenticate";

const RATE_LIMIT_WINDOW_MS = 60_000;

class RedisWithMemoryFallbackStore implements Store {
  readonly localKeys = false;
  private readonly redisStore: RedisStore;
  private readonly memory = new MemoryStore();
  private options: Options | undefined;
  private redisInitialised = false;
  private initialising: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisClient,
    readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.redisStore = new RedisStore({
      prefix,
      sendCommand: (command: string, ...args: string[]) =>
        redis.call(command, ...args) as Promise<RedisReply>,
    });
  }

  init(options: Options): void {
    this.options = options;
    this.memory.init(options);
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return this.withFallback(
      () => this.redisStore.get(key),
      () => this.memory.get(key),
    );
  }

  async increment(key: string): Promise<IncrementResponse> {
    return this.withFallback(
      () => this.redisStore.increment(key),
      () => this.memory.increment(key),
    );
  }

  async decrement(key: string): Promise<void> {
    await this.withFallback(
      () => this.redisStore.decrement(key),
      () => this.memory.decrement(key),
    );
  }

  async resetKey(key: string): Promise<void> {
    await this.memory.resetKey(key);
    await this.withFallback(
      () => this.redisStore.resetKey(key),
      () => undefined,
    );
  }

  private async withFallback<T>(remote: () => Promise<T>, local: () => T | Promise<T>): Promise<T> {
    if (await this.redisUsable()) {
      try {
        return await remote();
      } catch (error) {
        // Scripts are loaded again on the next use (Redis may have restarted empty).
        this.redisInitialised = false;
        this.logger.warn({ err: error }, "rate limit: redis command failed; counting in memory");
      }
    }
    return local();
  }

  private async redisUsable(): Promise<boolean> {
    if (!redisReady(this.redis) || this.options === undefined) return false;
    if (this.redisInitialised) return true;
    // Concurrent requests share one attempt to load the scripts.
    this.initialising ??= this.loadScripts(this.options);
    await this.initialising;
    return this.redisInitialised;
  }

  private async loadScripts(options: Options): Promise<void> {
    try {
      await this.redisStore.init(options);
      this.redisInitialised = true;
    } catch (error) {
      this.logger.warn({ err: error }, "rate limit: redis scripts not loaded; counting in memory");
    } finally {
      this.initialising = undefined;
    }
  }
}

export interface RateLimiterOptions {
  readonly name: "general" | "expensive";
  readonly limitPerMinute: number;
  readonly redis: RedisClient;
  readonly logger: Logger;
}

export function createRateLimiter(options: RateLimiterOptions): RequestHandler {
  const store = new RedisWithMemoryFallbackStore(
    options.redis,
    `keel:rl:${options.name}:`,
    options.logger,
  );
  return rateLimit({
    windowMs: RATE_LIMIT_WINDOW_MS,
    limit: options.limitPerMinute,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    identifier: options.name,
    store,
    keyGenerator: (req) => callerKey(req) ?? `ip:${ipKeyGenerator(req.ip ?? "unknown")}`,
    handler: (_req, res, next) => {
      const retryAfterSeconds = Number(res.getHeader("Retry-After") ?? "60");
      next(
        tooManyRequests(
          `Too many requests (${options.name} limit: ${options.limitPerMinute} per minute).`,
          retryAfterSeconds * 1000,
        ),
      );
    },
    logger: {
      error: (error, message) => options.logger.error({ err: error }, message ?? "rate limit"),
      warn: (error, message) => options.logger.warn({ err: error }, message ?? "rate limit"),
    },
  });
}
