// Redis configuration: a complete redis.conf (Debian's unit runs `redis-server /etc/redis/redis.conf`)
// and an ACL file in which the application user's password is stored only as its SHA-256.
import { createHash } from "node:crypto";

export const REDIS_PORT = 6379;
export const REDIS_USER = "keel";

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
 * INFO stays allowed: client libraries use it to check the server is ready.
 */
export function renderRedisAcl(password: string): string {
  const hash = createHash("sha256").update(password).digest("hex");
  return `user default off resetpass -@all
user ${REDIS_USER} on #${hash} ~* &* +@all -@dangerous -@admin +info
`;
}
