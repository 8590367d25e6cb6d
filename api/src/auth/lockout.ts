// Login lockout: five failed logins for one email lock it for 15 minutes. Counters live in Redis
// (shared by every API process); while Redis is unavailable they live in this process's memory,
// so the protection degrades to per-process instead of disappearing.
import { createHash } from "node:crypto";
import type { Logger } from "../logger";
import { redisReady, type RedisClient } from "../redis";

const MAX_FAILED_LOGINS = 5;
const LOCKOUT_MS = 15 * 60 * 1000;

// KEYS[1] failure counter, KEYS[2] lock; ARGV window ms, max failures, lock ms.
// Returns the lock's length in ms when this failure locked the email, else 0.
const RECORD_FAILURE = `
local failures = redis.call("INCR", KEYS[1])
if failures == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
if failures >= tonumber(ARGV[2]) then
  redis.call("SET", KEYS[2], "1", "PX", ARGV[3])
  redis.call("DEL", KEYS[1])
  return tonumber(ARGV[3])
end
return 0
`;

interface MemoryEntry {
  failures: number;
  windowEndsAt: number;
  lockedUntil: number;
}

const MEMORY_PRUNE_THRESHOLD = 10_000;

export class LoginLockout {
  private readonly memory = new Map<string, MemoryEntry>();

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: Logger,
  ) {}

  /** Milliseconds the email stays locked; 0 when it is not locked. */
  async lockedForMs(email: string): Promise<number> {
    const id = emailId(email);
    const remote = await this.tryRedis(async () => {
      const ttl = await this.redis.pttl(lockKey(id));
      return Math.max(ttl, 0);
    });
    if (remote !== undefined) return remote;
    const entry = this.memory.get(id);
    return entry === undefined ? 0 : Math.max(entry.lockedUntil - Date.now(), 0);
  }

  /** Counts a failed login; returns the lock's length in ms when this failure locked the email. */
  async recordFailure(email: string): Promise<number> {
    const id = emailId(email);
    const remote = await this.tryRedis(async () => {
      const result = await this.redis.eval(
        RECORD_FAILURE,
        2,
        failuresKey(id),
        lockKey(id),
        String(LOCKOUT_MS),
        String(MAX_FAILED_LOGINS),
        String(LOCKOUT_MS),
      );
      return Number(result);
    });
    if (remote !== undefined) return remote;
    return this.recordFailureInMemory(id);
  }

  /** Forgets the failures after a successful login. */
  async reset(email: string): Promise<void> {
    const id = emailId(email);
    this.memory.delete(id);
    await this.tryRedis(() => this.redis.del(failuresKey(id)));
  }

  private recordFailureInMemory(id: string): number {
    const now = Date.now();
    if (this.memory.size >= MEMORY_PRUNE_THRESHOLD) this.prune(now);
    let entry = this.memory.get(id);
    if (entry === undefined || entry.windowEndsAt <= now) {
      entry = { failures: 0, windowEndsAt: now + LOCKOUT_MS, lockedUntil: entry?.lockedUntil ?? 0 };
      this.memory.set(id, entry);
    }
    entry.failures += 1;
    if (entry.failures < MAX_FAILED_LOGINS) return 0;
    entry.failures = 0;
    entry.lockedUntil = now + LOCKOUT_MS;
    return LOCKOUT_MS;
  }

  private prune(now: number): void {
    for (const [id, entry] of this.memory) {
      if (entry.windowEndsAt <= now && entry.lockedUntil <= now) this.memory.delete(id);
    }
  }

  // Runs `action` against Redis; undefined means "Redis unavailable, use memory".
  private async tryRedis<T>(action: () => Promise<T>): Promise<T | undefined> {
    if (!redisReady(this.redis)) return undefined;
    try {
      return await action();
    } catch (error) {
      this.logger.warn({ err: error }, "login lockout: redis command failed; using memory");
      return undefined;
    }
  }
}

// Emails are hashed before they become Redis keys: no personal data in Redis.
function emailId(email: string): string {
  return createHash("sha256").update(email, "utf8").digest("hex");
}

const failuresKey = (id: string): string => `keel:login:failures:${id}`;
const lockKey = (id: string): string => `keel:login:lock:${id}`;
