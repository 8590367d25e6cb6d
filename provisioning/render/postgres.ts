// PostgreSQL 17 configuration: a conf.d file sized from the server's memory, pg_hba.conf, and
// the SCRAM verifier of the application role's password.
import { POSTGRES_EXPORTER_ROLE } from "./monitoring";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";

export const POSTGRES_PORT = 5432;
export const DATABASE = "keel";
/**
 * The group role that owns the database and every object in it. Nobody logs in as it: the API
 * logs in as a login role of its current password (loginRole), which acts as this one.
 */
export const OWNER_ROLE = "keel";

/**
 * The login role of a password: keel_<first 12 hex digits of its SHA-256>. A new password gets a
 * new login role while the old one keeps working, so the instances still running with the old
 * password keep opening connections until the api step restarts them; the postgres step drops a
 * login role once no session uses it any more.
 */
export function loginRole(password: string): string {
  return `${OWNER_ROLE}_${createHash("sha256").update(password).digest("hex").slice(0, 12)}`;
}

const mb = (value: number): string => `${Math.round(value)}MB`;
const clamp = (value: number, min: number, max: number): number =>
  Math.min(max, Math.max(min, value));

/** Memory settings for a server with `memoryMb` shared with Redis, nginx and the API. */
export function postgresMemory(memoryMb: number): Record<string, string> {
  return {
    shared_buffers: mb(memoryMb / 4),
    effective_cache_size: mb(memoryMb / 2),
    work_mem: mb(clamp(memoryMb / 128, 4, 64)),
    maintenance_work_mem: mb(clamp(memoryMb / 16, 64, 1024)),
  };
}

export function renderPostgresConf(memoryMb: number): string {
  const memory = Object.entries(postgresMemory(memoryMb))
    .map(([key, value]) => `${key} = '${value}'`)
    .join("\n");
  return `# Managed by Keel: overrides of Debian's postgresql.conf, read last from conf.d.
# Local clients only: the API runs on this machine.
listen_addresses = 'localhost'
port = ${POSTGRES_PORT}
password_encryption = 'scram-sha-256'
max_connections = 50

# TimescaleDB must be preloaded; it starts background workers of its own.
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
timescaledb.max_background_workers = 4
max_worker_processes = 12

# Memory, computed from ${memoryMb} MB of RAM.
${memory}

# No JIT: the sandbox denies memory that is writable and executable, which LLVM's JIT needs,
# and a query costly enough to be compiled then fails ("error during JITing: Permission denied").
jit = off

# SSD-backed storage.
random_page_cost = 1.1
effective_io_concurrency = 200
max_wal_size = '1GB'

# Logs go to the journal through Debian's log collector; slow statements are logged.
log_min_duration_statement = 1000
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
`;
}

/**
 * A drop-in that reloads PostgreSQL once it has started. A checkpointer that starts while the
 * server is still recovering (after a crash or power cut) sleeps until checkpoint_timeout
 * without regard to archive_timeout, and nothing wakes it when recovery ends: for up to that
 * long no WAL segment is closed and archived. A reload wakes it (measured on PostgreSQL 17).
 */
export function renderPostgresStartReload(): string {
  return `# Managed by Keel: wake the checkpointer once the server runs, so that archive_timeout
# holds from the first minute after a crash recovery too.
[Service]
ExecStartPost=/usr/bin/pg_ctlcluster --skip-systemctl-redirect %i reload
`;
}

export function renderPgHba(): string {
  return `# Managed by Keel: who may connect. Everything not listed is refused.
# +${OWNER_ROLE} is every member of the ${OWNER_ROLE} role: the API's login roles.
# ${POSTGRES_EXPORTER_ROLE} is the metrics exporter (pg_monitor), as the OS user of that name.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer
local   postgres  ${POSTGRES_EXPORTER_ROLE}               peer
local   ${DATABASE}      +${OWNER_ROLE}                    scram-sha-256
host    ${DATABASE}      +${OWNER_ROLE}     127.0.0.1/32   scram-sha-256
host    ${DATABASE}      +${OWNER_ROLE}     ::1/128        scram-sha-256
`;
}

/**
 * The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802, RFC 7677), in the form
 * `ALTER ROLE … PASSWORD` accepts. Its salt derives from the password, so the same password
 * always gives the same verifier: the step compares it with pg_authid and changes nothing when
 * they match, and the password itself never reaches the server.
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = createHmac("sha256", password).update("keel postgres salt").digest().subarray(0, 16);
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  const b64 = (b: Buffer): string => b.toString("base64");
  return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}
