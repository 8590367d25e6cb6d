// The ordered list of provisioning steps. Names, order and which secrets each step needs are
// static; what a step sends is a pure function of plain values (buildStep), shared by the
// Pulumi component, the end-to-end runner and `npm run render`.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ACCESS_TOKEN_SECONDS } from "../api/src/auth/key-ring";
import {
  ACME_WEBROOT,
  API_ENV_FILE,
  BACKUP_LAYOUT_FILE,
  JWT_KEYS_FILE,
  PGBACKREST_CONF,
  uploadPath,
} from "./layout";
import { encodePayload, stepCommand, type PayloadFile } from "./payload";
import { renderApiEnv, renderApiUnit, renderMigrateUnit } from "./render/api";
import {
  renderArchiveConf,
  renderBackupLayout,
  renderBackupService,
  renderBackupTimers,
  renderDrillService,
  renderMetricsService,
  renderMetricsSocket,
  renderPgbackrestConf,
  renderStatusCommand,
  renderWatchService,
  BACKUP_STATUS_COMMAND,
  BACKUP_TOOL,
} from "./render/backup";
import { renderFail2banJail, renderNftables } from "./render/firewall";
import {
  renderCertbotHardening,
  renderFail2banHardening,
  renderLogrotateHardening,
  renderNginxHardening,
  renderPostgresHardening,
  renderRedisHardening,
  renderRootShellHardening,
  renderSysstatHardening,
  ROOT_SHELL_UNITS,
  SYSSTAT_UNITS,
} from "./render/hardening";
import {
  NGINX_INCLUDE_DIR,
  NGINX_SNIPPET_DIR,
  renderCertbotDeployHook,
  renderNginxConf,
  renderNginxErrors,
  renderNginxHeaders,
  renderNginxHttp,
  renderNginxHttps,
  renderNginxLimits,
  renderNginxLogrotate,
  renderNginxProxy,
  renderNginxStatus,
  renderNginxTls,
  renderNginxUpstream,
  renderLogrotateTimer,
} from "./render/nginx";
import {
  loginRole,
  renderPgHba,
  renderPostgresConf,
  renderPostgresStartReload,
  scramVerifier,
} from "./render/postgres";
import { renderRedisAcl, renderRedisConf } from "./render/redis";
import {
  OPERATOR_KEYS_FILE,
  OPS_SETTINGS_FILE,
  OPS_TOOL,
  renderOperatorKeys,
  renderOpsSettings,
} from "./render/operator";
import {
  ALERT_RULES,
  ALERTMANAGER_CONFIG,
  MONITORING_UNITS,
  PROMETHEUS_CONFIG,
  PROMETHEUS_DATA_DIR,
  REDIS_EXPORTER_PASSWORD_FILE,
  SMTP_PASSWORD_FILE,
  TLS_METRICS_TOOL,
  renderAlertmanagerConfig,
  renderAlertRules,
  renderMonitoringDefaults,
  renderMonitoringHardening,
  renderPrometheusConfig,
  renderRedisExporterPassword,
  renderTlsMetricsService,
  renderTlsMetricsSocket,
} from "./render/monitoring";
import { renderSshdConfig } from "./render/sshd";
import {
  DEBSUMS_UNIT,
  renderCoredumpConf,
  renderCoreDumpLimits,
  renderDebsumsDefaults,
  renderDebsumsService,
  renderDebsumsTimer,
  renderKernelHardening,
  renderLoginBanner,
  renderModuleBlacklist,
  renderNeedrestart,
  renderShellProfile,
  renderSysstatDefaults,
} from "./render/host";
import {
  AIDE_CONFIG,
  AIDE_UNIT,
  INTEGRITY_TOOL,
  renderAcctLogrotate,
  renderAideConfig,
  renderAideService,
  renderAideTimer,
  renderAptIntegrityHook,
  renderRootkitIgnore,
  renderRootkitService,
  renderRootkitTimer,
  ROOTKIT_IGNORE,
  ROOTKIT_UNIT,
} from "./render/intrusion";
import {
  DATA_MOUNT_UNIT,
  renderAutoUpgrades,
  renderDataMount,
  renderJournald,
  renderSysctl,
  renderUnattendedUpgrades,
  swapSizeMb,
} from "./render/system";
import type { SecretName, SecretValues, ServerValues } from "./values";

export const STEP_NAMES = [
  "wait",
  "base",
  "postgres",
  "redis",
  "nginx",
  "api",
  "backups",
  "monitoring",
  "restore",
] as const;
export type StepName = (typeof STEP_NAMES)[number];

/** A file the step installs on the server, at `path`. Secret files never leave the payload. */
export interface RenderedFile {
  readonly path: string;
  readonly content: string;
  /** Holds a secret: mode 0600 in the payload, and `npm run render` shows placeholders. */
  readonly secret?: boolean;
}

export interface StepDefinition {
  readonly name: StepName;
  readonly description: string;
  /** Secrets the step's payload carries; a step with any gets `logging: none`. */
  readonly secrets: readonly SecretName[];
  /** How long the step may run on a slow server before Pulumi gives up. */
  readonly timeoutMinutes: number;
  /** Non-secret arguments of the script: visible in the command, so in `pulumi preview`. */
  readonly args: (values: ServerValues) => string[];
  readonly files: (values: ServerValues, secrets: SecretValues) => RenderedFile[];
  /** Values the script consumes without installing them (payload inputs/<name>). */
  readonly inputs?: (values: ServerValues, secrets: SecretValues) => Record<string, string>;
}

const file = (path: string, content: string, secret = false): RenderedFile => ({
  path,
  content,
  secret,
});

export const STEPS: readonly StepDefinition[] = [
  {
    name: "wait",
    description: "wait for SSH, cloud-init and boot; require Debian 13",
    secrets: [],
    timeoutMinutes: 15,
    args: () => [],
    files: () => [],
  },
  {
    name: "base",
    description:
      "updates, accounts, sshd, the operators' keel-ops, firewall, fail2ban, journald, host hardening, intrusion detection, data volume, swap",
    secrets: [],
    timeoutMinutes: 30,
    args: (v) => ["--data-device", v.dataDevice, "--swap-mb", String(swapSizeMb(v.memoryMb))],
    files: (v) => [
      file("/etc/ssh/sshd_config.d/00-keel.conf", renderSshdConfig(v.sshUser)),
      file(OPERATOR_KEYS_FILE, renderOperatorKeys(v.operatorKeys)),
      file(OPS_TOOL, readServerTool("keel-ops")),
      file(OPS_SETTINGS_FILE, renderOpsSettings(v.apiHost)),
      file("/etc/nftables.conf", renderNftables(v.sshAllowCidrs)),
      file("/etc/fail2ban/jail.d/keel.local", renderFail2banJail(v.sshAllowCidrs)),
      file(
        "/etc/systemd/system/fail2ban.service.d/50-keel-hardening.conf",
        renderFail2banHardening(),
      ),
      file("/etc/systemd/journald.conf.d/50-keel.conf", renderJournald()),
      file("/etc/apt/apt.conf.d/20auto-upgrades", renderAutoUpgrades()),
      file("/etc/apt/apt.conf.d/52keel-unattended-upgrades", renderUnattendedUpgrades()),
      file("/etc/sysctl.d/60-keel.conf", renderSysctl()),
      file("/etc/sysctl.d/61-keel-hardening.conf", renderKernelHardening()),
      file("/etc/security/limits.d/50-keel.conf", renderCoreDumpLimits()),
      file("/etc/systemd/coredump.conf.d/50-keel.conf", renderCoredumpConf()),
      file("/etc/profile.d/keel.sh", renderShellProfile()),
      file("/etc/modprobe.d/keel-blacklist.conf", renderModuleBlacklist()),
      file("/etc/issue", renderLoginBanner()),
      file("/etc/issue.net", renderLoginBanner()),
      file("/etc/needrestart/conf.d/keel.conf", renderNeedrestart()),
      file("/etc/default/sysstat", renderSysstatDefaults()),
      ...SYSSTAT_UNITS.map((unit) =>
        file(`/etc/systemd/system/${unit}.d/50-keel-hardening.conf`, renderSysstatHardening()),
      ),
      file("/etc/default/debsums", renderDebsumsDefaults()),
      file(`/etc/systemd/system/${DEBSUMS_UNIT}.service`, renderDebsumsService()),
      file(`/etc/systemd/system/${DEBSUMS_UNIT}.timer`, renderDebsumsTimer()),
      file(INTEGRITY_TOOL, readServerTool("keel-integrity")),
      file(AIDE_CONFIG, renderAideConfig()),
      file(`/etc/systemd/system/${AIDE_UNIT}.service`, renderAideService()),
      file(`/etc/systemd/system/${AIDE_UNIT}.timer`, renderAideTimer()),
      file(ROOTKIT_IGNORE, renderRootkitIgnore()),
      file(`/etc/systemd/system/${ROOTKIT_UNIT}.service`, renderRootkitService()),
      file(`/etc/systemd/system/${ROOTKIT_UNIT}.timer`, renderRootkitTimer()),
      file("/etc/apt/apt.conf.d/80keel-integrity", renderAptIntegrityHook()),
      file("/etc/logrotate.d/keel-acct", renderAcctLogrotate()),
      ...ROOT_SHELL_UNITS.map((unit) =>
        file(`/etc/systemd/system/${unit}.d/50-keel-hardening.conf`, renderRootShellHardening()),
      ),
      ...(v.dataDevice === ""
        ? []
        : [file(`/etc/systemd/system/${DATA_MOUNT_UNIT}`, renderDataMount(v.dataDevice))]),
    ],
  },
  {
    name: "postgres",
    description: "PostgreSQL 17 + TimescaleDB on the data volume, the keel role and database",
    secrets: ["postgresPassword"],
    timeoutMinutes: 20,
    args: () => [],
    files: (v) => [
      file("/etc/postgresql/17/main/conf.d/50-keel.conf", renderPostgresConf(v.memoryMb)),
      file("/etc/postgresql/17/main/pg_hba.conf", renderPgHba()),
      file(
        "/etc/systemd/system/postgresql@.service.d/50-keel-hardening.conf",
        renderPostgresHardening(),
      ),
      file(
        "/etc/systemd/system/postgresql@.service.d/60-keel-start-reload.conf",
        renderPostgresStartReload(),
      ),
    ],
    inputs: (_v, s) => ({
      "login-role": loginRole(s.postgresPassword),
      "login-verifier": scramVerifier(s.postgresPassword),
    }),
  },
  {
    name: "redis",
    description: "Redis on loopback with an ACL user for the API",
    secrets: ["redisPassword"],
    timeoutMinutes: 10,
    args: () => [],
    files: (v, s) => [
      file("/etc/redis/redis.conf", renderRedisConf(v.memoryMb)),
      file("/etc/redis/users.acl", renderRedisAcl(s.redisPassword), true),
      file(
        "/etc/systemd/system/redis-server.service.d/50-keel-hardening.conf",
        renderRedisHardening(),
      ),
    ],
  },
  {
    name: "nginx",
    description: "nginx, the TLS certificate from the ACME server, renewal",
    secrets: [],
    timeoutMinutes: 15,
    args: (v) => [
      "--domain",
      v.apiHost,
      "--email",
      v.acmeEmail,
      "--acme-server",
      v.acmeServer,
      "--webroot",
      ACME_WEBROOT,
    ],
    files: (v) => [
      file("/etc/nginx/nginx.conf", renderNginxConf()),
      file(`${NGINX_INCLUDE_DIR}/10-tls.conf`, renderNginxTls()),
      file(`${NGINX_INCLUDE_DIR}/20-limits.conf`, renderNginxLimits(v.rateLimits)),
      file(`${NGINX_INCLUDE_DIR}/30-upstream.conf`, renderNginxUpstream(v.apiInstances)),
      file(`${NGINX_INCLUDE_DIR}/40-http.conf`, renderNginxHttp(v.apiHost)),
      file(`${NGINX_INCLUDE_DIR}/60-status.conf`, renderNginxStatus()),
      file(`${NGINX_INCLUDE_DIR}/50-https.conf`, renderNginxHttps(v)),
      file(`${NGINX_SNIPPET_DIR}/keel-headers.conf`, renderNginxHeaders()),
      file(`${NGINX_SNIPPET_DIR}/keel-errors.conf`, renderNginxErrors()),
      file(`${NGINX_SNIPPET_DIR}/keel-proxy.conf`, renderNginxProxy()),
      file("/etc/letsencrypt/renewal-hooks/deploy/keel-reload-nginx", renderCertbotDeployHook()),
      file("/etc/systemd/system/nginx.service.d/50-keel-hardening.conf", renderNginxHardening()),
      file(
        "/etc/systemd/system/certbot.service.d/50-keel-hardening.conf",
        renderCertbotHardening(),
      ),
      file("/etc/logrotate.d/nginx", renderNginxLogrotate()),
      file("/etc/systemd/system/logrotate.timer.d/50-keel-hourly.conf", renderLogrotateTimer()),
      file(
        "/etc/systemd/system/logrotate.service.d/50-keel-hardening.conf",
        renderLogrotateHardening(),
      ),
    ],
  },
  {
    name: "api",
    description:
      "the API release, its migrations, a rolling restart gated on /ready, and a watch window that rolls back",
    secrets: [
      "postgresPassword",
      "redisPassword",
      "jwtSecret",
      "adminApiKey",
      "s3AccessKeyId",
      "s3SecretAccessKey",
    ],
    // The rolling restart, and a watch window of up to 15 minutes.
    timeoutMinutes: 35,
    args: (v) => [
      "--release",
      v.release.id,
      "--archive",
      uploadPath(v.release.id),
      "--instances",
      String(v.apiInstances),
      "--jwt-keys",
      JWT_KEYS_FILE,
      "--token-seconds",
      String(ACCESS_TOKEN_SECONDS),
      "--watch-seconds",
      String(v.releaseWatch.seconds),
      "--max-error-rate",
      String(v.releaseWatch.maxErrorRate),
      "--max-latency-factor",
      String(v.releaseWatch.maxLatencyFactor),
    ],
    files: (v, s) => [
      file(API_ENV_FILE, renderApiEnv(v, s), true),
      file("/etc/systemd/system/keel-api@.service", renderApiUnit(v.memoryMb)),
      file("/etc/systemd/system/keel-migrate@.service", renderMigrateUnit()),
    ],
    // Once every instance runs on the current password, the other login roles are dropped.
    inputs: (_v, s) => ({ "login-role": loginRole(s.postgresPassword) }),
  },
  {
    name: "backups",
    description: "pgBackRest to the backup bucket: WAL archiving, timed backups, drills, metrics",
    secrets: ["backupAccessKeyId", "backupSecretAccessKey", "backupCipherPass"],
    timeoutMinutes: 60,
    args: (v) => [
      "--layout",
      BACKUP_LAYOUT_FILE,
      "--restore-pending",
      v.restore === "" || v.restore === "undo" ? "no" : "yes",
    ],
    files: (v, s) => [
      file(PGBACKREST_CONF, renderPgbackrestConf(v.backup, s), true),
      file(BACKUP_LAYOUT_FILE, renderBackupLayout()),
      file(BACKUP_TOOL, readServerTool("keel-backup")),
      file(BACKUP_STATUS_COMMAND, renderStatusCommand()),
      file("/etc/postgresql/17/main/conf.d/60-keel-backup.conf", renderArchiveConf()),
      file("/etc/systemd/system/keel-backup-full.service", renderBackupService("full")),
      file("/etc/systemd/system/keel-backup-diff.service", renderBackupService("diff")),
      file("/etc/systemd/system/keel-restore-drill.service", renderDrillService()),
      file("/etc/systemd/system/keel-backup-watch.service", renderWatchService()),
      file("/etc/systemd/system/keel-backup-metrics.socket", renderMetricsSocket()),
      file("/etc/systemd/system/keel-backup-metrics@.service", renderMetricsService()),
      ...Object.entries(renderBackupTimers()).map(([unit, content]) =>
        file(`/etc/systemd/system/${unit}`, content),
      ),
    ],
  },
  {
    name: "monitoring",
    description:
      "Prometheus, Alertmanager and Debian's exporters on loopback: metrics, alert rules, alert mail",
    secrets: ["redisPassword", "smtpPassword"],
    timeoutMinutes: 15,
    args: () => ["--data-dir", PROMETHEUS_DATA_DIR],
    files: (v, s) => [
      ...MONITORING_UNITS.flatMap((unit) => [
        file(
          `/etc/default/${unit.replace(/\.service$/, "")}`,
          renderMonitoringDefaults(unit, v.memoryMb),
        ),
        file(
          `/etc/systemd/system/${unit}.d/50-keel-hardening.conf`,
          renderMonitoringHardening(unit, v.memoryMb),
        ),
      ]),
      file(ALERT_RULES, renderAlertRules()),
      file(PROMETHEUS_CONFIG, renderPrometheusConfig(v.apiInstances)),
      file(ALERTMANAGER_CONFIG, renderAlertmanagerConfig(v.alerts)),
      ...(v.alerts.smtp !== null && v.alerts.smtp.username !== ""
        ? [file(SMTP_PASSWORD_FILE, s.smtpPassword, true)]
        : []),
      file(REDIS_EXPORTER_PASSWORD_FILE, renderRedisExporterPassword(s.redisPassword), true),
      file(TLS_METRICS_TOOL, readServerTool("keel-tls-metrics")),
      file("/etc/systemd/system/keel-tls-metrics.socket", renderTlsMetricsSocket()),
      file("/etc/systemd/system/keel-tls-metrics@.service", renderTlsMetricsService()),
    ],
  },
  {
    name: "restore",
    description: "keel:restore: the database restored to a point in time, once per value",
    secrets: [],
    timeoutMinutes: 120,
    args: (v) => ["--target", v.restore === "" ? "none" : v.restore],
    files: () => [],
    inputs: () => ({ layout: renderBackupLayout() }),
  },
];

export function stepDefinition(name: StepName): StepDefinition {
  const found = STEPS.find((step) => step.name === name);
  if (found === undefined) throw new Error(`unknown provisioning step ${name}`);
  return found;
}

const SCRIPTS_DIR = join(__dirname, "scripts");

export function readScript(name: string): string {
  return readFileSync(join(SCRIPTS_DIR, `${name}.sh`), "utf8");
}

/** A tool the steps install on the server (provisioning/server/<name>.sh). */
export function readServerTool(name: string): string {
  return readFileSync(join(__dirname, "server", `${name}.sh`), "utf8");
}

/** Everything one step sends to the server. */
export interface StepPlan {
  readonly name: StepName;
  /** The remote command: the bootstrap with the step's arguments. Holds no secret. */
  readonly command: string;
  /** The payload: script, library, rendered files and inputs. Secret when `secrets` is not empty. */
  readonly stdin: string;
  /** Hash of command and payload: it changes exactly when what the step would do changes. */
  readonly trigger: string;
  readonly secrets: readonly SecretName[];
  readonly files: readonly RenderedFile[];
  /** The API release archive, copied to the server before the step runs. */
  readonly upload?: { readonly localPath: string; readonly remotePath: string };
}

/** The command a step runs; it depends on non-secret values only. */
export function stepCommandFor(name: StepName, values: ServerValues): string {
  return stepCommand(name, stepDefinition(name).args(values), values.sshUser);
}

/**
 * Builds what step `name` sends. `secrets` needs only the secrets the step declares; the Pulumi
 * component resolves no others for it.
 */
export function buildStep(
  name: StepName,
  values: ServerValues,
  secrets: Partial<SecretValues>,
): StepPlan {
  const definition = stepDefinition(name);
  const missing = definition.secrets.filter((key) => typeof secrets[key] !== "string");
  if (missing.length > 0) throw new Error(`step ${name} needs the secrets ${missing.join(", ")}`);
  const declared = secrets as SecretValues;
  const files = definition.files(values, declared);
  const inputs = definition.inputs?.(values, declared) ?? {};
  const payload: PayloadFile[] = [
    { path: "step.sh", mode: "0755", content: readScript(name) },
    { path: "lib.sh", mode: "0644", content: readScript("lib") },
    ...files.map((f) => ({
      path: `files${f.path}`,
      mode: f.secret === true ? ("0600" as const) : ("0644" as const),
      content: f.content,
    })),
    ...Object.entries(inputs).map(([inputName, value]) => ({
      path: `inputs/${inputName}`,
      mode: "0600" as const,
      content: value,
    })),
  ];
  const command = stepCommandFor(name, values);
  const stdin = encodePayload(payload);
  const trigger = createHash("sha256").update(command).update("\0").update(stdin).digest("hex");
  return {
    name,
    command,
    stdin,
    trigger,
    secrets: definition.secrets,
    files,
    ...(name === "api" && values.release.archive !== ""
      ? { upload: { localPath: values.release.archive, remotePath: uploadPath(values.release.id) } }
      : {}),
  };
}
