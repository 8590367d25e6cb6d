// systemd drop-ins that harden Debian's own units for nginx, PostgreSQL, Redis, fail2ban,
// certbot, sysstat and logrotate. Each is
// merged with the packaged unit; the provisioning tests score the merged result with
// `systemd-analyze security`.
import { ACME_WEBROOT, BACKUP_DIR, DATA_DIR, POSTGRES_DATA_DIR } from "../layout";
import { PGBACKREST_LOG_DIR } from "./backup";
import { CERTBOT_HOOK_FAILED, CERTBOT_RUNTIME_DIR } from "./nginx";
import { SANDBOX_BASELINE, SYSCALL_BASELINE } from "./sandbox";

export function renderNginxHardening(): string {
  return `# Managed by Keel: sandbox for nginx. The master runs as root to bind 80/443 and read the
# certificates, then drops to www-data; it needs nothing else.
[Unit]
RequiresMountsFor=${DATA_DIR}

[Service]
${SANDBOX_BASELINE}
ProtectSystem=strict
ReadWritePaths=/var/log/nginx /var/lib/nginx /run
CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
${SYSCALL_BASELINE}
UMask=0027
`;
}

export function renderPostgresHardening(): string {
  return `# Managed by Keel: sandbox for every PostgreSQL cluster. pg_ctlcluster starts as root and
# switches to the postgres user. The server listens on loopback only (listen_addresses); its
# archive_command (pgBackRest) pushes WAL to the backup bucket, so outbound traffic is allowed;
# its paths ("-": they exist once the backups step ran) are writable.
[Unit]
RequiresMountsFor=${DATA_DIR}

[Service]
${SANDBOX_BASELINE}
ProtectSystem=strict
ReadWritePaths=${POSTGRES_DATA_DIR} /run/postgresql /var/log/postgresql /var/lib/postgresql -${BACKUP_DIR} -${PGBACKREST_LOG_DIR}
CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_KILL
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
${SYSCALL_BASELINE}
UMask=0077
`;
}

export function renderRedisHardening(): string {
  return `# Managed by Keel: Debian's redis-server unit is already sandboxed; Keel adds that Redis
# only ever talks to local clients and sees only its own processes.
[Service]
IPAddressDeny=any
IPAddressAllow=localhost
ProcSubset=pid
DevicePolicy=closed
KeyringMode=private
`;
}

export function renderFail2banHardening(): string {
  return `# Managed by Keel: sandbox for fail2ban. It reads the journal, keeps its database and log,
# and changes nftables sets over netlink; it needs no network of its own.
[Service]
${SANDBOX_BASELINE}
ProtectSystem=strict
ReadWritePaths=/var/lib/fail2ban /var/log /run/fail2ban
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_DAC_READ_SEARCH
RestrictAddressFamilies=AF_UNIX AF_NETLINK
IPAddressDeny=any
${SYSCALL_BASELINE}
UMask=0077
`;
}

/**
 * Sandbox for certbot's renewals (certbot.timer): it talks to the ACME server, writes the
 * certificates on the data volume and the challenge files, and its deploy hook runs \`nginx -t\`
 * (which opens nginx's logs and binds ports 80 and 443) and asks systemd to reload nginx.
 */
export function renderCertbotHardening(): string {
  return `# Managed by Keel: sandbox for certbot's renewals. certbot exits 0 when its deploy hook fails;
# the hook then leaves a mark in the runtime directory, and the check after it fails the unit.
[Unit]
RequiresMountsFor=${DATA_DIR}

[Service]
${SANDBOX_BASELINE}
ProtectSystem=strict
ReadWritePaths=${DATA_DIR}/letsencrypt ${ACME_WEBROOT} -/var/lib/letsencrypt -/var/log/letsencrypt -/var/log/nginx
CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_CHOWN CAP_FOWNER CAP_NET_BIND_SERVICE
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
${SYSCALL_BASELINE}
UMask=0022
RuntimeDirectory=${CERTBOT_RUNTIME_DIR.slice("/run/".length)}
ExecStartPost=/bin/sh -c '! test -e ${CERTBOT_HOOK_FAILED}'
`;
}

/** sysstat's units: one drop-in each, all the same. */
export const SYSSTAT_UNITS = [
  "sysstat.service",
  "sysstat-collect.service",
  "sysstat-summary.service",
  "sysstat-rotate.service",
] as const;

export function renderSysstatHardening(): string {
  return `# Managed by Keel: sandbox for sysstat's recorders. They read the kernel's counters in /proc
# and /sys and write /var/log/sysstat; nothing else. (No private network: the counters of the
# server's own interfaces are the point.)
[Service]
${SANDBOX_BASELINE}
ProtectSystem=strict
ReadWritePaths=/var/log/sysstat
CapabilityBoundingSet=
RestrictAddressFamilies=AF_UNIX
IPAddressDeny=any
${SYSCALL_BASELINE}
UMask=0022
`;
}

export function renderLogrotateHardening(): string {
  return `# Managed by Keel: logrotate beyond Debian's own sandbox. It rewrites /var/log, keeps its state
# in /var/lib/logrotate, may switch to a log's owner ("su"), and signals services through
# systemctl and their local sockets; it needs no network.
[Service]
${SANDBOX_BASELINE}
ProtectSystem=strict
ReadWritePaths=/var/log /var/lib/logrotate
CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_SETUID CAP_SETGID
PrivateNetwork=true
RestrictAddressFamilies=AF_UNIX
IPAddressDeny=any
${SYSCALL_BASELINE}
`;
}

/** Debian's units whose processes are root shells that install packages (see below). */
export const ROOT_SHELL_UNITS = ["ssh.service", "apt-daily-upgrade.service"] as const;

/**
 * What a root shell that installs packages can do without: sshd's sessions are Pulumi's
 * provisioning, and apt-daily-upgrade installs security updates. Both run maintainer scripts that
 * may load modules, set kernel settings, mount, create devices or setuid files and restart
 * services, so no file system, device, capability or namespace sandbox. Left out: clocks, wake
 * alarms, reboot calls, real-time scheduling, foreign personalities and architectures, process
 * accounting, immutable flags, file leases. A blocked call fails with EPERM; it never kills the
 * session. sshd's sessions and their mounts stay in the host's namespaces.
 */
export function renderRootShellHardening(): string {
  return `# Managed by Keel: the little a root shell that installs packages can do without.
[Service]
LockPersonality=true
RestrictRealtime=true
SystemCallArchitectures=native
KeyringMode=private
CapabilityBoundingSet=~CAP_SYS_TIME CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_SYS_BOOT CAP_SYS_TTY_CONFIG CAP_SYS_PACCT CAP_LINUX_IMMUTABLE CAP_LEASE CAP_MAC_ADMIN CAP_MAC_OVERRIDE
SystemCallErrorNumber=EPERM
SystemCallFilter=~@clock @cpu-emulation @obsolete @reboot
`;
}
