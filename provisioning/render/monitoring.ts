// The metrics store and its alerts: Prometheus, Alertmanager and Debian's exporters, all on
// loopback, configured through Debian's /etc/default files and sandboxed by drop-ins. Prometheus
// scrapes every API instance, the exporters, the backup state and the served certificate, keeps
// its data on the volume, and sends firing alerts to Alertmanager, which mails them when
// keel:smtp is set. `keel-ops status` lists what fires either way.
import { apiPort, BACKUP_METRICS_PORT, DATA_DIR } from "../layout";
import type { AlertValues } from "../values";
import { REDIS_METRICS_USER, REDIS_PORT, redisMetricsPassword } from "./redis";
import { SANDBOX_BASELINE, SYSCALL_BASELINE } from "./sandbox";

export const PROMETHEUS_PORT = 9090;
export const ALERTMANAGER_PORT = 9093;
export const NODE_EXPORTER_PORT = 9100;
export const NGINX_EXPORTER_PORT = 9113;
export const REDIS_EXPORTER_PORT = 9121;
export const POSTGRES_EXPORTER_PORT = 9187;
/** The served certificate's expiry as a metric (keel-tls-metrics), on loopback only. */
export const TLS_METRICS_PORT = 9189;
/** nginx's stub_status, for the nginx exporter only. */
export const NGINX_STATUS_PORT = 9180;

export const PROMETHEUS_DATA_DIR = `${DATA_DIR}/prometheus`;
export const PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml";
export const ALERT_RULES = "/etc/prometheus/keel-rules.yml";
export const ALERTMANAGER_CONFIG = "/etc/prometheus/alertmanager.yml";
/** The SMTP password, readable by the prometheus group only (Alertmanager runs as prometheus). */
export const SMTP_PASSWORD_FILE = "/etc/prometheus/alertmanager-smtp-password";
/** The PostgreSQL role the exporter logs in as, by peer authentication over the local socket. */
export const POSTGRES_EXPORTER_ROLE = "prometheus";
/** The Redis exporter's password, as the exporter reads it: a JSON map from address to password. */
export const REDIS_EXPORTER_PASSWORD_FILE = "/etc/prometheus/redis-exporter-password.json";
const REDIS_ADDRESS = `127.0.0.1:${REDIS_PORT}`;
export const TLS_METRICS_TOOL = "/usr/local/sbin/keel-tls-metrics";

/** Debian's units of the metrics store, each with a drop-in of its own. */
export const MONITORING_UNITS = [
  "prometheus.service",
  "prometheus-alertmanager.service",
  "prometheus-node-exporter.service",
  "prometheus-postgres-exporter.service",
  "prometheus-redis-exporter.service",
  "prometheus-nginx-exporter.service",
] as const;
export type MonitoringUnit = (typeof MONITORING_UNITS)[number];

/** Prometheus's memory: an eighth of the server's, 128 to 512 MB. */
export function prometheusMemoryMb(memoryMb: number): number {
  return Math.min(512, Math.max(128, Math.round(memoryMb / 8)));
}

/** The most the metrics may take on the volume: a quarter of the memory's size, 256 MB to 2 GB. */
export function prometheusRetentionMb(memoryMb: number): number {
  return Math.min(2048, Math.max(256, Math.round(memoryMb / 4)));
}

/** Each exporter's and Alertmanager's memory cap, in MB. */
const SMALL_UNIT_MEMORY_MB = 64;

/** Debian's units read ARGS from /etc/default/<name>; nothing secret goes there. */
export function renderMonitoringDefaults(unit: MonitoringUnit, memoryMb: number): string {
  const args: Record<MonitoringUnit, string[]> = {
    "prometheus.service": [
      `--config.file=${PROMETHEUS_CONFIG}`,
      `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`,
      `--storage.tsdb.path=${PROMETHEUS_DATA_DIR}`,
      "--storage.tsdb.retention.time=30d",
      `--storage.tsdb.retention.size=${prometheusRetentionMb(memoryMb)}MB`,
      "--query.max-concurrency=4",
    ],
    "prometheus-alertmanager.service": [
      `--config.file=${ALERTMANAGER_CONFIG}`,
      `--web.listen-address=127.0.0.1:${ALERTMANAGER_PORT}`,
      // One server, no cluster: nothing listens on the gossip port.
      "--cluster.listen-address=",
    ],
    "prometheus-node-exporter.service": [
      `--web.listen-address=127.0.0.1:${NODE_EXPORTER_PORT}`,
      // adjtimex(2) is a clock call, which the sandbox refuses (the call kills the exporter).
      "--no-collector.timex",
    ],
    "prometheus-postgres-exporter.service": [
      `--web.listen-address=127.0.0.1:${POSTGRES_EXPORTER_PORT}`,
    ],
    "prometheus-redis-exporter.service": [
      `-web.listen-address=127.0.0.1:${REDIS_EXPORTER_PORT}`,
      `-redis.addr=redis://${REDIS_ADDRESS}`,
      `-redis.user=${REDIS_METRICS_USER}`,
      `-redis.password-file=${REDIS_EXPORTER_PASSWORD_FILE}`,
    ],
    "prometheus-nginx-exporter.service": [
      `--web.listen-address=127.0.0.1:${NGINX_EXPORTER_PORT}`,
      `--nginx.scrape-uri=http://127.0.0.1:${NGINX_STATUS_PORT}/stub_status`,
    ],
  };
  const lines = [
    "# Managed by Keel: the arguments of Debian's unit; loopback only.",
    `ARGS="${args[unit].join(" ")}"`,
  ];
  if (unit === "prometheus-postgres-exporter.service") {
    // Peer authentication on the local socket: no password anywhere.
    lines.push(
      `DATA_SOURCE_NAME="user=${POSTGRES_EXPORTER_ROLE} host=/run/postgresql dbname=postgres sslmode=disable"`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function staticJob(name: string, targets: readonly string[], interval?: string): string {
  const list = targets.map((t) => `"${t}"`).join(", ");
  const every = interval === undefined ? "" : `\n    scrape_interval: ${interval}`;
  return `  - job_name: ${name}${every}
    static_configs:
      - targets: [${list}]`;
}

export function renderPrometheusConfig(apiInstances: number): string {
  const instances = Array.from({ length: apiInstances }, (_, i) => `127.0.0.1:${apiPort(i + 1)}`);
  return `# Managed by Keel: what Prometheus scrapes, and where its alerts go.
global:
  scrape_interval: 15s
  evaluation_interval: 15s

rule_files:
  - ${ALERT_RULES}

alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:${ALERTMANAGER_PORT}"]

scrape_configs:
${staticJob("api", instances)}
${staticJob("node", [`127.0.0.1:${NODE_EXPORTER_PORT}`])}
${staticJob("postgres", [`127.0.0.1:${POSTGRES_EXPORTER_PORT}`])}
${staticJob("redis", [`127.0.0.1:${REDIS_EXPORTER_PORT}`])}
${staticJob("nginx", [`127.0.0.1:${NGINX_EXPORTER_PORT}`])}
  # Each scrape asks pgBackRest and the certificate: every two minutes is plenty.
${staticJob("backup", [`127.0.0.1:${BACKUP_METRICS_PORT}`], "2m")}
${staticJob("tls", [`127.0.0.1:${TLS_METRICS_PORT}`], "2m")}
`;
}

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly severity: "critical" | "warning";
  readonly summary: string;
}

/** Requests that count for the error rate and latency: not Prometheus's own scrapes. */
const SERVED = 'job="api",route!="/metrics"';
const DAY = 86_400;

/** The alerts, in the order `ops status` lists them. */
export const ALERT_RULES_LIST: readonly AlertRule[] = [
  {
    alert: "KeelApiInstanceDown",
    expr: 'up{job="api"} == 0',
    for: "1m",
    severity: "critical",
    summary: "API instance {{ $labels.instance }} does not answer /metrics",
  },
  {
    alert: "KeelApiErrorRate",
    expr: `sum(rate(http_requests_total{${SERVED},status=~"5.."}[5m])) / sum(rate(http_requests_total{${SERVED}}[5m])) > 0.05 and sum(rate(http_requests_total{${SERVED}}[5m])) > 0.1`,
    for: "5m",
    severity: "critical",
    summary: "{{ $value | humanizePercentage }} of API requests answered 5xx over 5 minutes",
  },
  {
    alert: "KeelApiLatency",
    expr: `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{${SERVED}}[5m]))) > 1`,
    for: "10m",
    severity: "warning",
    summary: "p99 latency of the API is {{ $value | humanizeDuration }} over 5 minutes",
  },
  {
    alert: "KeelPostgresDown",
    expr: 'pg_up == 0 or up{job="postgres"} == 0',
    for: "1m",
    severity: "critical",
    summary: "PostgreSQL does not answer",
  },
  {
    alert: "KeelRedisDown",
    expr: 'redis_up == 0 or up{job="redis"} == 0',
    for: "1m",
    severity: "critical",
    summary: "Redis does not answer",
  },
  {
    alert: "KeelStorageUnreachable",
    expr: 'max(keel_dependency_up{dependency="storage"}) == 0',
    for: "5m",
    severity: "critical",
    summary: "No API instance reaches the object storage (R2)",
  },
  {
    alert: "KeelWalArchiveFailing",
    expr: "keel_wal_last_failed_timestamp_seconds > keel_wal_last_archived_timestamp_seconds",
    for: "10m",
    severity: "critical",
    summary: "PostgreSQL cannot archive WAL to the backup bucket",
  },
  {
    alert: "KeelDiskFull",
    expr: 'max by (mountpoint) (1 - node_filesystem_avail_bytes{mountpoint=~"/|/srv/keel"} / node_filesystem_size_bytes) > 0.85',
    for: "5m",
    severity: "critical",
    summary: "{{ $labels.mountpoint }} is {{ $value | humanizePercentage }} full",
  },
  {
    alert: "KeelCertificateExpiring",
    expr: `keel_tls_certificate_not_after_timestamp_seconds - time() < ${14 * DAY}`,
    for: "1h",
    severity: "warning",
    summary: "The served certificate expires in {{ $value | humanizeDuration }}",
  },
  {
    alert: "KeelCertificateUnreadable",
    expr: "keel_tls_probe_success == 0",
    for: "15m",
    severity: "warning",
    summary: "nginx serves no certificate for the API host on 127.0.0.1:443",
  },
  {
    alert: "KeelBackupStale",
    expr: `time() - max(keel_backup_last_success_timestamp_seconds) > ${26 * 3600} or absent(keel_backup_last_success_timestamp_seconds)`,
    for: "1h",
    severity: "critical",
    summary: "No successful backup for more than a day",
  },
  {
    alert: "KeelBackupFailed",
    expr: "keel_backup_last_failure_timestamp_seconds > on() (max(keel_backup_last_success_timestamp_seconds) or vector(0))",
    for: "0m",
    severity: "critical",
    summary: "The last backup failed",
  },
  {
    alert: "KeelWalChainBroken",
    expr: "keel_wal_chain_whole == 0",
    for: "0m",
    severity: "critical",
    summary: "WAL was dropped since the last full backup: point-in-time recovery has a gap",
  },
  {
    alert: "KeelRestoreDrillFailed",
    expr: "keel_restore_drill_last_failure_timestamp_seconds > on() (max(keel_restore_drill_last_success_timestamp_seconds) or vector(0))",
    for: "0m",
    severity: "critical",
    summary: "The last restore drill failed",
  },
  {
    alert: "KeelScrapeFailing",
    expr: 'up{job!="api"} == 0',
    for: "5m",
    severity: "warning",
    summary: "Prometheus cannot scrape {{ $labels.job }} ({{ $labels.instance }})",
  },
];

export function renderAlertRules(): string {
  const rules = ALERT_RULES_LIST.map(
    (r) => `      - alert: ${r.alert}
        expr: ${JSON.stringify(r.expr)}
        for: ${r.for}
        labels:
          severity: ${r.severity}
        annotations:
          summary: ${JSON.stringify(r.summary)}`,
  );
  return `# Managed by Keel: the alerts Prometheus evaluates every 15 seconds.
groups:
  - name: keel
    rules:
${rules.join("\n")}
`;
}

/**
 * Alertmanager: mail to keel:alertEmail through keel:smtp, or no receiver at all (the alerts
 * still fire, and `keel-ops status` lists them).
 */
export function renderAlertmanagerConfig(alerts: AlertValues): string {
  const { smtp } = alerts;
  const route = `route:
  receiver: ${smtp === null ? "none" : "email"}
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
`;
  if (smtp === null) {
    return `# Managed by Keel: no keel:smtp, so no mail; \`npm run ops -- status\` lists firing alerts.
${route}
receivers:
  - name: none
`;
  }
  const auth =
    smtp.username === ""
      ? ""
      : `  smtp_auth_username: ${JSON.stringify(smtp.username)}
  smtp_auth_password_file: ${SMTP_PASSWORD_FILE}
`;
  return `# Managed by Keel: firing and resolved alerts are mailed to ${alerts.email}.
global:
  smtp_smarthost: ${JSON.stringify(`${smtp.host}:${smtp.port}`)}
  smtp_from: ${JSON.stringify(smtp.from)}
${auth}  smtp_require_tls: ${smtp.requireTls}

${route}
receivers:
  - name: email
    email_configs:
      - to: ${JSON.stringify(alerts.email)}
        send_resolved: true
`;
}

/** The exporter looks its password up by the address with the user in it. */
export function renderRedisExporterPassword(redisPassword: string): string {
  const key = `redis://${REDIS_METRICS_USER}@${REDIS_ADDRESS}`;
  return `${JSON.stringify({ [key]: redisMetricsPassword(redisPassword) })}\n`;
}

/** What each unit may write, beyond nothing. */
const WRITABLE: Record<MonitoringUnit, string> = {
  "prometheus.service": PROMETHEUS_DATA_DIR,
  "prometheus-alertmanager.service": "/var/lib/prometheus/alertmanager",
  "prometheus-node-exporter.service": "",
  "prometheus-postgres-exporter.service": "/run/postgresql",
  "prometheus-redis-exporter.service": "",
  "prometheus-nginx-exporter.service": "",
};

/**
 * Sandbox for a unit of the metrics store: no capability, no other user's files, loopback only
 * (Alertmanager may reach the SMTP server), a memory cap (each Go runtime is told to collect
 * garbage harder before it). The node exporter reads interface counters over netlink.
 */
export function renderMonitoringHardening(unit: MonitoringUnit, memoryMb: number): string {
  const limitMb =
    unit === "prometheus.service" ? prometheusMemoryMb(memoryMb) : SMALL_UNIT_MEMORY_MB;
  const node = unit === "prometheus-node-exporter.service";
  const writable = WRITABLE[unit];
  const lines = [
    SANDBOX_BASELINE,
    "ProtectSystem=strict",
    ...(writable === "" ? [] : [`ReadWritePaths=${writable}`]),
    "PrivateUsers=true",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    `RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6${node ? " AF_NETLINK" : ""}`,
    ...(unit === "prometheus-alertmanager.service"
      ? []
      : ["IPAddressDeny=any", "IPAddressAllow=localhost"]),
    SYSCALL_BASELINE,
    "UMask=0077",
    `MemoryMax=${limitMb}M`,
    `Environment=GOMEMLIMIT=${Math.floor(limitMb * 0.8)}MiB`,
  ];
  return `# Managed by Keel: sandbox and memory cap for ${unit}.
${unit === "prometheus.service" ? `[Unit]\nRequiresMountsFor=${DATA_DIR}\n\n` : ""}[Service]
${lines.join("\n")}
`;
}

/**
 * A socket on loopback that starts one short process per connection (a template service), for
 * metrics Prometheus scrapes: `what` names them.
 */
export function renderScrapeSocket(what: string, port: number): string {
  return `# Managed by Keel: ${what} for the local metrics store, on loopback only.
[Unit]
Description=Keel: ${what} listener

[Socket]
ListenStream=127.0.0.1:${port}
Accept=yes
MaxConnections=4

[Install]
WantedBy=sockets.target
`;
}

/** The served certificate's expiry as metrics, one short process per scrape. */
export function renderTlsMetricsSocket(): string {
  return renderScrapeSocket("certificate metrics", TLS_METRICS_PORT);
}

export function renderTlsMetricsService(): string {
  return `# Managed by Keel: answers one scrape of the certificate metrics (${TLS_METRICS_TOOL}).
[Unit]
Description=Keel: certificate metrics for one scrape

[Service]
ExecStart=${TLS_METRICS_TOOL}
StandardInput=socket
StandardOutput=socket
StandardError=journal
RuntimeMaxSec=30
DynamicUser=true
${SANDBOX_BASELINE}
ProtectSystem=strict
PrivateUsers=true
CapabilityBoundingSet=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
IPAddressDeny=any
IPAddressAllow=localhost
${SYSCALL_BASELINE}
`;
}
