// Redis configuration: a complete redis.conf (Debian's unit runs `redis-server /etc/redis/redis.conf`)
// and an ACL file in which the application user's password is stored only as its SHA-256.
import { createHash, createHmac } from "node:crypto";

export const REDIS_PORT = 6379;
export const REDIS_USER = "keel";
/** The metrics exporter's user: INFO and PING, no key and no channel. */
export const REDIS_METRICS_USER = "metrics";

/**
 * The metrics user's password, derived from the API's: it rotates with it, and neither can be
 * computed from the other's hash.
 */
export function redisMetricsPassword(redisPassword: string): string {
  return createHmac("sha256", redisPassword).update("keel redis metrics user").digest("hex");
}

/** Memory for rate-limit counters and lockouts: a sixteenth of RAM, 64 to 512 MB. */
export function redisMaxMemoryMb(memoryMb: number): number {
  return Math.min(512, Math.max(64, Math.round(memoryMb / 16)));
}

export function renderRedisConf(memoryMb: number): string {
  return `# Managed by Keel: Redis holds rate-limit counters and login lockouts only.
# Loopback only, protected mode, and no default user (see users.acl).
bind 127.0.0.1 -::1
protected-mode yes
port ${REDIS_PORT}
tcp-backlog 511
timeout 0
tcp-keepalive 300

# systemd supervises the server and the journal keeps its log.
daemonize no
supervised systemd
pidfile /run/redis/redis-server.pid
loglevel notice
logfile ""

# Every key carries a TTL and losing them on restart is harmless: no persistence at all.
save ""
appendonly no
dir /var/lib/redis

# When memory runs out, evict the keys that expire soonest: counters nearly done with.
maxmemory ${redisMaxMemoryMb(memoryMb)}mb
maxmemory-policy volatile-ttl

aclfile /etc/redis/users.acl
`;
}

/**
 * ACL users: the default user is off; the application user may run everything except
 * dangerous and administrative commands (FLUSHALL, CONFIG, KEYS, DEBUG, SHUTDOWN, ACL, …).
 * INFO stays allowed: client libraries use it to check the server is ready. The metrics user
 * may only read INFO, PING and latency figures, and name its connection.
 */
export function renderRedisAcl(password: string): string {
  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
  return `user default off resetpass -@all
user ${REDIS_USER} on #${sha256(password)} ~* &* +@all -@dangerous -@admin +info
user ${REDIS_METRICS_USER} on #${sha256(redisMetricsPassword(password))} resetkeys resetchannels -@all +info +ping +latency|latest +latency|histogram +client|setname
`;
}
