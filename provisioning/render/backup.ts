// Backups with pgBackRest: its configuration (an S3 repository in the backup bucket, encrypted,
// asynchronous WAL archiving with a bounded local queue), PostgreSQL's archive settings, the
// layout file the server's keel-backup tool reads, and the systemd units and timers that run
// backups, restore drills, the chain watch and the metrics listener.
import {
  BACKUP_DIR,
  BACKUP_METRICS_PORT,
  BACKUP_REPO_PATH,
  BACKUP_SPOOL_DIR,
  BACKUP_STANZA,
  BACKUP_STATE_DIR,
  DATA_DIR,
  DRILL_DIR,
  DRILL_PORT,
  PGBACKREST_CONF,
  PGBACKREST_LOCK_DIR,
  POSTGRES_DATA_DIR,
  REPLACED_DIR,
} from "../layout";
import type { StorageValues } from "../values";
import { renderScrapeSocket } from "./monitoring";
import { DATABASE, POSTGRES_PORT } from "./postgres";
import { SANDBOX_BASELINE } from "./sandbox";

/** Where the keel-backup tool is installed, and the command operators run. */
export const BACKUP_TOOL = "/usr/local/lib/keel/keel-backup";
export const BACKUP_STATUS_COMMAND = "/usr/local/bin/keel-backup-status";
export const PGBACKREST_LOG_DIR = "/var/log/pgbackrest";
const PG_BIN = "/usr/lib/postgresql/17/bin";
/** The API's tables whose row counts are recorded before each backup and checked after restores. */
export const KEY_TABLES = [
  "orgs",
  "users",
  "api_keys",
  "systems",
  "evidence",
  "events",
  "audit_events",
] as const;

export interface BackupValues {
  /** The backup bucket: its own bucket and token, apart from the API's. */
  readonly storage: StorageValues;
  /** keel:backupRetentionFull: full backups kept (with their differentials and WAL). */
  readonly retentionFull: number;
  /** Bound of the local WAL queue while the repository is unreachable, in MB. */
  readonly queueMaxMb: number;
}

export interface BackupSecrets {
  readonly backupAccessKeyId: string;
  readonly backupSecretAccessKey: string;
  /** Encrypts the repository (aes-256-cbc); without it the backups cannot be read. */
  readonly backupCipherPass: string;
}

/**
 * Key prefixes of the files pgBackRest writes once and never rewrites: the WAL segments
 * (archive/<stanza>/<pg version>-<n>/…) and the backup sets (backup/<stanza>/<YYYYMMDD>-…). Its
 * archive.info and backup.info are rewritten by every backup, so they stay unlocked.
 */
export function backupLockPrefixes(): string[] {
  const root = BACKUP_REPO_PATH.replace(/^\//, "");
  return [`${root}/archive/${BACKUP_STANZA}/17-`, `${root}/backup/${BACKUP_STANZA}/2`];
}

/** The local WAL queue: a fifth of the data volume, 256 MB to 4 GB. */
export function walQueueMaxMb(volumeSizeGb: number): number {
  return Math.min(4096, Math.max(256, Math.floor((volumeSizeGb * 1024) / 5)));
}

/** pgBackRest's S3 endpoint options from an https URL (an explicit port when not 443). */
function endpointOptions(endpoint: string): string[] {
  const url = new URL(endpoint);
  if (url.protocol !== "https:") {
    throw new Error(`the backup repository's endpoint must be https, got ${endpoint}`);
  }
  return [
    `repo1-s3-endpoint=${url.hostname}`,
    ...(url.port === "" ? [] : [`repo1-storage-port=${url.port}`]),
  ];
}

export function renderPgbackrestConf(values: BackupValues, secrets: BackupSecrets): string {
  const words: Array<[string, string]> = [
    ["backupAccessKeyId", secrets.backupAccessKeyId],
    ["backupSecretAccessKey", secrets.backupSecretAccessKey],
    ["backupCipherPass", secrets.backupCipherPass],
  ];
  for (const [name, value] of words) {
    if (!/^\S+$/.test(value)) throw new Error(`${name} must be one word, without whitespace`);
  }
  return `# Managed by Keel: pgBackRest, the backup repository in the backup bucket. Secret:
# root:postgres 0640. See README "Backups and restore".
[global]
repo1-type=s3
${endpointOptions(values.storage.endpoint).join("\n")}
repo1-s3-bucket=${values.storage.bucket}
repo1-s3-region=${values.storage.region}
repo1-s3-uri-style=path
repo1-s3-key=${secrets.backupAccessKeyId}
repo1-s3-key-secret=${secrets.backupSecretAccessKey}
repo1-path=${BACKUP_REPO_PATH}
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=${secrets.backupCipherPass}
repo1-retention-full-type=count
repo1-retention-full=${values.retentionFull}

# WAL leaves PostgreSQL at once into a local queue on the volume; a background process pushes
# it. While the repository is unreachable the queue grows up to archive-push-queue-max, then
# WAL is dropped (and reported) rather than filling the volume and stopping PostgreSQL.
archive-async=y
archive-push-queue-max=${values.queueMaxMb}MiB
archive-timeout=60
spool-path=${BACKUP_SPOOL_DIR}
lock-path=${PGBACKREST_LOCK_DIR}
log-path=${PGBACKREST_LOG_DIR}
log-level-file=info
log-level-console=warn
compress-type=zst
process-max=2
start-fast=y
delta=y

[${BACKUP_STANZA}]
pg1-path=${POSTGRES_DATA_DIR}
pg1-port=${POSTGRES_PORT}
pg1-socket-path=/run/postgresql
`;
}

/** PostgreSQL's side: archive every WAL segment, and at least once a minute. */
export function renderArchiveConf(): string {
  return `# Managed by Keel: continuous WAL archiving to the backup repository (pgBackRest).
# archive_timeout bounds what a lost server can lose: at most a minute of committed data (50 s
# to the switch, the rest for the upload).
archive_mode = on
archive_command = 'pgbackrest --config=${PGBACKREST_CONF} --stanza=${BACKUP_STANZA} archive-push %p'
archive_timeout = 50
`;
}

/** The layout the keel-backup tool reads: one source of these facts, Keel's TypeScript. */
export function renderBackupLayout(): string {
  return `# Managed by Keel: where Keel's backups live on this server (read by ${BACKUP_TOOL}).
PGBACKREST_CONF=${PGBACKREST_CONF}
STANZA=${BACKUP_STANZA}
DATABASE=${DATABASE}
BACKUP_DIR=${BACKUP_DIR}
SPOOL_DIR=${BACKUP_SPOOL_DIR}
STATE_DIR=${BACKUP_STATE_DIR}
DRILL_DIR=${DRILL_DIR}
DRILL_PORT=${DRILL_PORT}
REPLACED_DIR=${REPLACED_DIR}
PG_DATA=${POSTGRES_DATA_DIR}
LOG_DIR=${PGBACKREST_LOG_DIR}
PG_BIN=${PG_BIN}
KEY_TABLES=(${KEY_TABLES.join(" ")})
`;
}

/** The sandbox of every backup unit: the postgres user, the volume's backup directory. */
function backupSandbox(readWrite: readonly string[]): string {
  return `User=postgres
Group=postgres
${SANDBOX_BASELINE}
ProtectSystem=strict
ReadWritePaths=${readWrite.join(" ")}
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
# PostgreSQL's own filter: pgBackRest sets owners on restore, and the drill runs a server.
SystemCallFilter=@system-service
SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @swap
SystemCallErrorNumber=EPERM
MemoryDenyWriteExecute=true
# The postgres user's shared memory is the server's: it must outlive this unit.
RemoveIPC=false
UMask=0077
Nice=10
IOSchedulingClass=idle`;
}

// A full backup removes the clusters earlier restores replaced ("-": there may be none yet).
const BACKUP_PATHS = [BACKUP_DIR, PGBACKREST_LOG_DIR, "/run/postgresql", `-${REPLACED_DIR}`];

function oneshot(description: string, command: string, extra: string, readWrite: string[]): string {
  return `# Managed by Keel: ${description}.
[Unit]
Description=Keel: ${description}
After=postgresql@17-main.service network-online.target
Wants=network-online.target
RequiresMountsFor=${DATA_DIR}
${extra}
[Service]
Type=oneshot
ExecStart=${command}
TimeoutStartSec=6h
${backupSandbox(readWrite)}
`;
}

export function renderBackupService(kind: "full" | "diff"): string {
  // A new full backup is proven restorable at once by a drill.
  const extra = kind === "full" ? "OnSuccess=keel-restore-drill.service\n" : "";
  return oneshot(
    `${kind === "full" ? "full" : "differential"} backup of the database`,
    `${BACKUP_TOOL} run ${kind}`,
    extra,
    BACKUP_PATHS,
  );
}

export function renderDrillService(): string {
  return oneshot(
    "restore drill: the latest backup restored into a throwaway cluster and checked",
    `${BACKUP_TOOL} drill`,
    "",
    BACKUP_PATHS,
  );
}

export function renderWatchService(): string {
  return oneshot(
    "backup chain watch: WAL archiving works and no WAL was dropped",
    `${BACKUP_TOOL} watch`,
    "",
    BACKUP_PATHS,
  );
}

function timer(description: string, onCalendar: string, unit: string, delay: string): string {
  return `# Managed by Keel: ${description}.
[Unit]
Description=Keel: ${description}

[Timer]
OnCalendar=${onCalendar}
RandomizedDelaySec=${delay}
Persistent=true
Unit=${unit}

[Install]
WantedBy=timers.target
`;
}

/** Backup, drill and watch timers: unit name -> file content. */
export function renderBackupTimers(): Record<string, string> {
  return {
    "keel-backup-full.timer": timer(
      "weekly full backup",
      "Sun *-*-* 03:00:00 UTC",
      "keel-backup-full.service",
      "30min",
    ),
    "keel-backup-diff.timer": timer(
      "daily differential backup",
      "Mon..Sat *-*-* 03:00:00 UTC",
      "keel-backup-diff.service",
      "30min",
    ),
    "keel-restore-drill.timer": timer(
      "weekly restore drill",
      "Wed *-*-* 04:00:00 UTC",
      "keel-restore-drill.service",
      "30min",
    ),
    "keel-backup-watch.timer": timer(
      "backup chain watch every five minutes",
      "*:0/5",
      "keel-backup-watch.service",
      "30s",
    ),
  };
}

/** The backup state as Prometheus metrics on loopback, one short process per scrape. */
export function renderMetricsSocket(): string {
  return renderScrapeSocket("backup metrics", BACKUP_METRICS_PORT);
}

export function renderMetricsService(): string {
  return `# Managed by Keel: answers one scrape of the backup metrics (keel-backup status --http).
[Unit]
Description=Keel: backup metrics for one scrape

[Service]
ExecStart=${BACKUP_TOOL} status --http
StandardInput=socket
StandardOutput=socket
StandardError=journal
RuntimeMaxSec=30
${backupSandbox([BACKUP_STATE_DIR])}
IPAddressDeny=any
IPAddressAllow=localhost
`;
}

/** keel-backup-status: the JSON state for operators (and the operator tooling). */
export function renderStatusCommand(): string {
  return `#!/bin/sh
# Managed by Keel: the backup state as JSON (--prometheus for metrics); see ${BACKUP_TOOL}.
exec runuser -u postgres -- ${BACKUP_TOOL} status "$@"
`;
}
