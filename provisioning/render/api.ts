// The API on the server: its environment file and two systemd units, the instance template
// keel-api@.service and the one-shot keel-migrate@.service that migrates a release's schema.
import type { RateLimits } from "../../infra/config-rules";
import {
  API_ENV_FILE,
  API_PORT_PREFIX,
  CURRENT_RELEASE,
  DATA_DIR,
  JWT_KEYS_FILE,
  RELEASES_DIR,
} from "../layout";
import type { SecretValues, StorageValues } from "../values";
import { DATABASE, loginRole, POSTGRES_PORT } from "./postgres";
import { REDIS_PORT, REDIS_USER } from "./redis";
import { SANDBOX_BASELINE } from "./sandbox";

export interface ApiEnvValues {
  readonly frontendOrigins: readonly string[];
  readonly rateLimits: RateLimits;
  readonly storage: StorageValues;
}

/** The API's environment. Secrets make it root:keel 0640 on the server, never world-readable. */
export function renderApiEnv(values: ApiEnvValues, secrets: SecretValues): string {
  const lines: Array<[string, string]> = [
    ["NODE_ENV", "production"],
    ["HOST", "127.0.0.1"],
    ["TRUST_PROXY", "1"],
    ["LOG_LEVEL", "info"],
    [
      "DATABASE_URL",
      `postgres://${loginRole(secrets.postgresPassword)}:${secrets.postgresPassword}@127.0.0.1:${POSTGRES_PORT}/${DATABASE}`,
    ],
    ["REDIS_URL", `redis://${REDIS_USER}:${secrets.redisPassword}@127.0.0.1:${REDIS_PORT}`],
    ["JWT_SECRET", secrets.jwtSecret],
    ["JWT_KEYS_FILE", JWT_KEYS_FILE],
    ["BOOTSTRAP_API_KEY", secrets.adminApiKey],
    ["FRONTEND_ORIGINS", values.frontendOrigins.join(",")],
    ["S3_ENDPOINT", values.storage.endpoint],
    ["S3_REGION", values.storage.region],
    ["S3_BUCKET", values.storage.bucket],
    ["S3_ACCESS_KEY_ID", secrets.s3AccessKeyId],
    ["S3_SECRET_ACCESS_KEY", secrets.s3SecretAccessKey],
    ["RATE_LIMIT_PER_MINUTE", String(values.rateLimits.apiPerMinute)],
    ["EXPENSIVE_RATE_LIMIT_PER_MINUTE", String(values.rateLimits.apiExpensivePerMinute)],
  ];
  for (const [name, value] of lines) {
    if (/[\s"'\\$`]/.test(value)) {
      throw new Error(`${name} holds a character an environment file cannot carry unquoted`);
    }
  }
  return `# Managed by Keel: the API's environment, read by keel-api@.service and keel-migrate@.service.
# PORT is set per instance by the unit.
${lines.map(([name, value]) => `${name}=${value}`).join("\n")}
`;
}

/** Memory per API instance: an eighth of RAM, 192 MB to 1 GB; the V8 heap gets three quarters. */
export function apiMemoryMb(memoryMb: number): number {
  return Math.min(1024, Math.max(192, Math.round(memoryMb / 8)));
}

/** The node options of an API instance on a server with `memoryMb` of RAM. */
export function apiNodeOptions(memoryMb: number): string {
  return `--max-old-space-size=${Math.floor(apiMemoryMb(memoryMb) * 0.75)}`;
}

/**
 * Sandbox shared by both units. MemoryDenyWriteExecute stays off: V8's JIT needs writable and
 * executable memory. IPAddressDeny keeps the API away from the cloud's metadata service.
 */
const SANDBOX = `User=keel-api
Group=keel
EnvironmentFile=${API_ENV_FILE}
${SANDBOX_BASELINE}
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
PrivateUsers=true
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RemoveIPC=true
UMask=0077
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
IPAddressDeny=169.254.0.0/16 fe80::/10`;

export function renderApiUnit(memoryMb: number): string {
  const memory = apiMemoryMb(memoryMb);
  return `# Managed by Keel: one API instance; keel-api@N listens on 127.0.0.1:${API_PORT_PREFIX}N.
# Instances run the release ${CURRENT_RELEASE} points to and restart one at a time on deploys.
[Unit]
Description=Keel API instance %i
After=network-online.target postgresql.service redis-server.service
Wants=network-online.target
RequiresMountsFor=${DATA_DIR}
StartLimitIntervalSec=60
StartLimitBurst=10

[Service]
Type=simple
# Resolved when the instance starts: /proc/PID/cwd shows the release it runs.
WorkingDirectory=${CURRENT_RELEASE}
ExecStart=/usr/bin/node ${CURRENT_RELEASE}/server.js
Environment=PORT=${API_PORT_PREFIX}%i
Environment=NODE_OPTIONS=${apiNodeOptions(memoryMb)}
Restart=always
RestartSec=1
# 78 (EX_CONFIG): the API refused its environment; restarting cannot help.
RestartPreventExitStatus=78
# The API drains for at most 25 s after SIGTERM.
TimeoutStopSec=30
${SANDBOX}
MemoryHigh=${Math.floor(memory * 0.9)}M
MemoryMax=${memory}M
TasksMax=128
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

export function renderMigrateUnit(): string {
  return `# Managed by Keel: applies the database migrations of release %i (started by the api step).
[Unit]
Description=Keel database migrations of release %i
After=network-online.target postgresql.service
RequiresMountsFor=${DATA_DIR}

[Service]
Type=oneshot
ExecStart=/usr/bin/node ${RELEASES_DIR}/%i/migrate.js
TimeoutStartSec=10min
${SANDBOX}
`;
}
