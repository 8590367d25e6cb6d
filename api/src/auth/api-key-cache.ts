// API keys as requests present them, looked up in PostgreSQL and kept in memory for a short while,
// so that a busy key costs no query per request. Revocation stays immediate on every instance:
// the instance that revokes a key forgets it and publishes its id on Redis, and every instance
// forgets the key when the message arrives. An instance that is not subscribed (Redis away or
// reconnecting) keeps nothing and asks PostgreSQL every time, so it cannot miss a revocation.
// Should a message be lost all the same (the revoking instance cannot reach Redis while the
// others can), an entry lives at most API_KEY_CACHE_TTL_MS. Unknown keys are never kept.
import { LRUCache } from "lru-cache";
import type { Database } from "../database";
import type { Logger } from "../logger";
import type { RedisClient } from "../redis";
import { hashApiKey } from "./api-keys";

export const API_KEY_REVOKED_CHANNEL = "keel:api-key-revoked";
/** The longest a revoked key can keep working should its message be lost (README). */
export const API_KEY_CACHE_TTL_MS = 10_000;
const MAX_CACHED_KEYS = 10_000;

export interface ApiKeyOwner {
  readonly keyId: string;
  readonly orgId: string;
}

export class ApiKeyCache {
  /** Key hash to owner. */
  private readonly entries: LRUCache<string, ApiKeyOwner>;
  private subscribed = false;
  /** Counts forgets, so that a lookup that raced one does not cache what it read before it. */
  private forgets = 0;

  /**
   * `subscriber`: a connection of its own (`redis.duplicate()`), which this cache puts into
   * subscriber mode; `redis` publishes. The caller closes both.
   */
  constructor(
    private readonly db: Database,
    private readonly redis: RedisClient,
    subscriber: RedisClient,
    private readonly logger: Logger,
    ttlMs = API_KEY_CACHE_TTL_MS,
  ) {
    this.entries = new LRUCache({ max: MAX_CACHED_KEYS, ttl: ttlMs });
    subscriber.on("message", (channel: string, keyId: string) => {
      if (channel === API_KEY_REVOKED_CHANNEL) this.forget(keyId);
    });
    // The main connection logs Redis's outages; this one logs only what they do to the cache.
    subscriber.on("error", () => undefined);
    const stop = (): void => {
      // "end": closed for good, as on shutdown; otherwise Redis went away and ioredis reconnects.
      if (this.subscribed && subscriber.status !== "end") {
        logger.warn("API key revocations unreachable: not caching keys");
      }
      this.subscribed = false;
      this.forgets += 1;
      this.entries.clear();
    };
    const subscribe = (): void => {
      subscriber.subscribe(API_KEY_REVOKED_CHANNEL).then(
        () => {
          this.subscribed = true;
          logger.info("subscribed to API key revocations: caching keys");
        },
        (error: unknown) => {
          logger.warn({ err: error }, "cannot subscribe to API key revocations; not caching keys");
        },
      );
    };
    subscriber.on("close", stop);
    subscriber.on("ready", subscribe);
    if (subscriber.status === "ready") subscribe();
  }

  /** The owner of an unrevoked key, or null. */
  async find(key: string): Promise<ApiKeyOwner | null> {
    const hash = hashApiKey(key);
    if (this.subscribed) {
      const cached = this.entries.get(hash);
      if (cached !== undefined) return cached;
    }
    const forgetsBefore = this.forgets;
    const row = await this.db<{
      id: string;
      org_id: string;
      key_hash: string;
      revoked_at: Date | null;
    }>("api_keys")
      .where({ key_hash: hash })
      .whereNull("revoked_at")
      .first("id", "org_id");
    if (row === undefined) return null;
    const owner = { keyId: row.id, orgId: row.org_id };
    if (this.subscribed && this.forgets === forgetsBefore) this.entries.set(hash, owner);
    return owner;
  }

  /** After a revocation has committed: this instance forgets the key, and tells the others. */
  async revoked(keyId: string): Promise<void> {
    this.forget(keyId);
    try {
      await this.redis.publish(API_KEY_REVOKED_CHANNEL, keyId);
    } catch (error) {
      this.logger.error(
        { err: error, keyId, boundMs: API_KEY_CACHE_TTL_MS },
        "could not tell the other instances about a revoked API key; they forget it within the bound",
      );
    }
  }

  private forget(keyId: string): void {
    this.forgets += 1;
    for (const [hash, owner] of this.entries.entries()) {
      if (owner.keyId === keyId) this.entries.delete(hash);
    }
  }
}
