// What `npm run ops` prints: keel-ops answers in JSON (status, releases) and raw log lines; these
// pure functions turn them into what a person reads, and name what needs attention.

export interface UnitStatus {
  readonly unit: string;
  readonly load: string;
  readonly active: string;
  readonly sub: string;
}

export interface InstanceStatus {
  readonly instance: number;
  readonly ready: boolean;
  readonly httpStatus: number;
  readonly checks: Readonly<Record<string, boolean>> | null;
}

export interface DiskStatus {
  readonly path: string;
  readonly mount: string;
  readonly sizeBytes: number;
  readonly usedBytes: number;
  readonly availableBytes: number;
  readonly usedPercent: number;
}

export interface BackupStatus {
  readonly lastFullAt: number | null;
  readonly lastDiffAt: number | null;
  readonly lastFailureAt: number | null;
  readonly lastWalArchivedAt: number | null;
  readonly walChainWhole: boolean | null;
  readonly lastDrillAt: number | null;
  readonly lastDrillFailureAt: number | null;
}

/** An alert Prometheus has firing (keel-rules.yml). */
export interface FiringAlert {
  readonly name: string;
  readonly severity: string;
  readonly summary: string;
  /** When its condition started to hold. */
  readonly since: number;
}

/** keel-ops status, as JSON. Times are Unix seconds. */
export interface ServerStatus {
  readonly server: string;
  readonly time: number;
  readonly units: readonly UnitStatus[];
  readonly failedUnits: readonly string[];
  readonly release: { readonly active: string | null; readonly kept: readonly string[] };
  readonly instances: readonly InstanceStatus[];
  readonly certificate: {
    readonly host: string;
    readonly notAfter: number | null;
    readonly daysLeft: number | null;
  };
  readonly disks: readonly DiskStatus[];
  readonly memory: {
    readonly totalBytes: number;
    readonly availableBytes: number;
    readonly swapTotalBytes: number;
    readonly swapFreeBytes: number;
  };
  readonly backup: BackupStatus | null;
  /** Firing alerts; null when Prometheus does not answer. */
  readonly alerts: readonly FiringAlert[] | null;
}

export interface ReleaseEntry {
  readonly id: string;
  readonly active: boolean;
  readonly arrivedAt: number | null;
  readonly migrated: boolean;
}

/** Below this many days a certificate needs attention (certbot renews at 30). */
export const CERTIFICATE_DAYS_WARNING = 14;
/** Above this share of a disk used, it needs attention. */
export const DISK_PERCENT_WARNING = 85;

/** A service runs; a timer or a socket is active whether or not its service runs right now. */
function healthy(unit: UnitStatus): boolean {
  if (unit.unit.endsWith(".service")) return unit.active === "active" && unit.sub === "running";
  return unit.active === "active";
}

/** What needs an operator's attention, one sentence each; empty when all is well. */
export function problems(status: ServerStatus): string[] {
  const found: string[] = [];
  for (const unit of status.units) {
    if (!healthy(unit)) found.push(`${unit.unit} is ${unit.active} (${unit.sub})`);
  }
  const listed = new Set(status.units.map((u) => u.unit));
  for (const unit of status.failedUnits) {
    if (!listed.has(unit)) found.push(`${unit} failed`);
  }
  if (status.instances.length === 0) found.push("no API instance is known to systemd");
  for (const instance of status.instances) {
    if (instance.ready) continue;
    const failing = Object.entries(instance.checks ?? {})
      .filter(([, ok]) => !ok)
      .map(([name]) => name);
    found.push(
      `keel-api@${instance.instance} is not ready (HTTP ${instance.httpStatus}${failing.length > 0 ? `; failing: ${failing.join(", ")}` : ""})`,
    );
  }
  if (status.release.active === null) found.push("no API release is active");
  const { certificate } = status;
  if (certificate.daysLeft === null) {
    found.push(`no certificate is served for ${certificate.host}`);
  } else if (certificate.daysLeft < CERTIFICATE_DAYS_WARNING) {
    found.push(`the certificate for ${certificate.host} expires in ${certificate.daysLeft} day(s)`);
  }
  for (const disk of status.disks) {
    if (disk.usedPercent > DISK_PERCENT_WARNING) {
      found.push(`${disk.path} is ${disk.usedPercent} % full`);
    }
  }
  const { backup } = status;
  if (backup === null) {
    found.push("the backup state does not answer (keel-backup-metrics.socket)");
  } else {
    const newest = Math.max(backup.lastFullAt ?? 0, backup.lastDiffAt ?? 0);
    if (newest === 0) found.push("no backup has succeeded yet");
    if (backup.lastFailureAt !== null && backup.lastFailureAt > newest) {
      found.push(`the last backup failed (${utc(backup.lastFailureAt)})`);
    }
    if (backup.walChainWhole === false) {
      found.push("WAL was dropped since the last full backup: the point-in-time chain is broken");
    }
    if (
      backup.lastDrillFailureAt !== null &&
      backup.lastDrillFailureAt > (backup.lastDrillAt ?? 0)
    ) {
      found.push(`the last restore drill failed (${utc(backup.lastDrillFailureAt)})`);
    }
  }
  if (status.alerts === null) {
    found.push("Prometheus does not answer: no alert can fire (prometheus.service)");
  } else {
    for (const alert of status.alerts) {
      found.push(
        `alert ${alert.name} (${alert.severity}) firing since ${utc(alert.since)}: ${alert.summary}`,
      );
    }
  }
  return found;
}

function utc(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** "3 min ago", "2 h ago", "5 d ago", or "never". */
export function age(seconds: number | null, now: number): string {
  if (seconds === null) return "never";
  const elapsed = Math.max(0, now - seconds);
  if (elapsed < 120) return `${elapsed} s ago`;
  if (elapsed < 2 * 3600) return `${Math.floor(elapsed / 60)} min ago`;
  if (elapsed < 2 * 86400) return `${Math.floor(elapsed / 3600)} h ago`;
  return `${Math.floor(elapsed / 86400)} d ago`;
}

function gigabytes(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths?.[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

/** The human view of keel-ops status. */
export function renderStatus(status: ServerStatus): string {
  const now = status.time;
  const lines = [`${status.server} at ${utc(now)}`, ""];
  const instances = status.instances.map((i) => [
    `keel-api@${i.instance}`,
    i.ready ? "ready" : "NOT READY",
    Object.entries(i.checks ?? {})
      .map(([name, ok]) => `${name} ${ok ? "ok" : "FAILING"}`)
      .join(", "),
  ]);
  const units = status.units.map((u) => [
    u.unit,
    `${u.active} (${u.sub})`,
    healthy(u) ? "" : "<- needs attention",
  ]);
  const { certificate, memory, backup } = status;
  const overview = [
    [
      "release",
      status.release.active === null
        ? "none active"
        : `${status.release.active} active; ${status.release.kept.length} kept`,
    ],
    [
      "certificate",
      certificate.notAfter === null
        ? `none served for ${certificate.host}`
        : `${certificate.host}, expires ${utc(certificate.notAfter)} (in ${certificate.daysLeft} days)`,
    ],
    ...status.disks.map((d) => [
      `disk ${d.path}`,
      `${d.usedPercent} % used, ${gigabytes(d.availableBytes)} free of ${gigabytes(d.sizeBytes)} (on ${d.mount})`,
    ]),
    [
      "memory",
      `${gigabytes(memory.availableBytes)} available of ${gigabytes(memory.totalBytes)}; swap ${gigabytes(memory.swapTotalBytes - memory.swapFreeBytes)} used of ${gigabytes(memory.swapTotalBytes)}`,
    ],
    [
      "backups",
      backup === null
        ? "no answer from the backup state"
        : `full ${age(backup.lastFullAt, now)}, differential ${age(backup.lastDiffAt, now)}, WAL archived ${age(backup.lastWalArchivedAt, now)}, chain ${backup.walChainWhole === false ? "BROKEN" : "whole"}`,
    ],
    [
      "restore drill",
      backup === null
        ? "unknown"
        : `passed ${age(backup.lastDrillAt, now)}${backup.lastDrillFailureAt === null ? "" : `, failed ${age(backup.lastDrillFailureAt, now)}`}`,
    ],
    ["failed units", status.failedUnits.length === 0 ? "none" : status.failedUnits.join(", ")],
    [
      "alerts",
      status.alerts === null
        ? "unknown: Prometheus does not answer"
        : status.alerts.length === 0
          ? "none firing"
          : status.alerts.map((a) => `${a.name} (${age(a.since, now)})`).join(", "),
    ],
  ];
  const found = problems(status);
  lines.push(...table(overview), "", "instances", ...table(instances).map((l) => `  ${l}`));
  lines.push("", "units", ...table(units).map((l) => `  ${l}`), "");
  lines.push(
    found.length === 0
      ? "all well"
      : [`${found.length} problem(s):`, ...found.map((p) => `  - ${p}`)].join("\n"),
  );
  return `${lines.join("\n")}\n`;
}

export function renderReleases(releases: readonly ReleaseEntry[], now: number): string {
  if (releases.length === 0) return "no release is kept on the server\n";
  const rows = [
    ["release", "arrived", "migrated", ""],
    ...releases.map((r) => [
      r.id,
      r.arrivedAt === null ? "unknown" : `${utc(r.arrivedAt)} (${age(r.arrivedAt, now)})`,
      r.migrated ? "yes" : "no",
      r.active ? "active" : "",
    ]),
  ];
  return `${table(rows).join("\n")}\n`;
}

const PINO_LEVELS: Readonly<Record<number, string>> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

function field(record: Record<string, unknown>, ...path: string[]): unknown {
  let value: unknown = record;
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function text(value: unknown): string | undefined {
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number") return String(value);
  return undefined;
}

/**
 * One log line as a person reads it: the API's and nginx's JSON lines become time, level, status,
 * method and path, latency, request id and message; any other line is kept as it is.
 */
export function prettyLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = field(record, "level");
  const time = text(field(record, "time"));
  const status = text(field(record, "res", "statusCode")) ?? text(field(record, "status"));
  const method = text(field(record, "req", "method")) ?? text(field(record, "method"));
  const path = text(field(record, "req", "url")) ?? text(field(record, "uri"));
  const apiMs = field(record, "responseTime");
  const nginxSeconds = field(record, "duration");
  const latency =
    typeof apiMs === "number"
      ? `${apiMs} ms`
      : typeof nginxSeconds === "number"
        ? `${Math.round(nginxSeconds * 1000)} ms`
        : undefined;
  const requestId = text(field(record, "requestId"));
  const message = text(field(record, "msg"));
  const error = text(field(record, "err", "message"));
  const parts = [
    time,
    typeof level === "number" ? (PINO_LEVELS[level] ?? String(level)) : text(level),
    status,
    method !== undefined && path !== undefined ? `${method} ${path}` : undefined,
    latency,
    requestId === undefined ? undefined : `[${requestId}]`,
    message,
    error === undefined ? undefined : `error: ${error}`,
  ].filter((part): part is string => part !== undefined);
  return parts.length === 0 ? line : parts.join("  ");
}
