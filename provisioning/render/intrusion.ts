// Intrusion detection of the base step: a file integrity baseline of what debsums cannot check
// (AIDE), a daily rootkit scan (chkrootkit) and kernel process accounting (acct), each cheap
// enough for the smallest droplet: no daemon, a few seconds of one core a day.
import { SANDBOX_BASELINE, SYSCALL_BASELINE } from "./sandbox";
import { LOG_ROTATION } from "./system";

/** Keel's tool that runs AIDE and chkrootkit and takes AIDE's new baseline. */
export const INTEGRITY_TOOL = "/usr/local/sbin/keel-integrity";
export const AIDE_CONFIG = "/etc/aide/aide.conf";
/** Where AIDE's baseline lives: root's alone, next to Keel's other state. */
export const AIDE_DIR = "/var/lib/keel/aide";
export const ROOTKIT_IGNORE = "/etc/keel/chkrootkit.ignore";
export const AIDE_UNIT = "keel-aide";
export const ROOTKIT_UNIT = "keel-chkrootkit";

/**
 * What AIDE watches: the files no package's checksums cover (configuration, Keel's tools, SSH
 * keys, the API's releases). Packaged programs and libraries are debsums's (weekly). Left out:
 * files the system itself rewrites (clock drift, resolver, mount table, password-file lock).
 * Attributes: type, permissions, owner, group, links, size and SHA-256 of the content; no times,
 * so a file put back as it was is no longer reported.
 */
export function renderAideConfig(): string {
  return `# Managed by Keel: AIDE's view of the files no package checksum covers. Keel's steps
# and apt take a new baseline after they change the system (keel-integrity accept);
# ${AIDE_UNIT}.timer reports any other change.
database_in=file:${AIDE_DIR}/aide.db
database_out=file:${AIDE_DIR}/aide.db.new
gzip_dbout=no
report_level=changed_attributes
Keel = ftype+p+u+g+n+l+s+sha256

/etc Keel
!/etc/(adjtime|resolv\\.conf|mtab|\\.pwd\\.lock)$
/usr/local Keel
/root/\\.ssh Keel
/srv/keel/releases Keel
`;
}

/**
 * chkrootkit's findings that are this server's own, as extended regular expressions: fail2ban
 * ships its test suite's Apache password files (hidden files under /usr/lib), and PostgreSQL
 * keeps its dynamic shared memory in /dev/shm while queries run in parallel. chkrootkit's
 * headlines are dropped too, so only paths decide.
 */
export function renderRootkitIgnore(): string {
  return `^WARNING: The following suspicious files (and directories were found|were found in /dev):$
^/usr/lib/python3/dist-packages/fail2ban/tests/files/config/apache-auth/[a-z_/]+/\\.ht(access|passwd) \\[From Debian package: fail2ban\\]$
^/dev/shm/PostgreSQL\\.[0-9]+$
^$
`;
}

/** The sandbox baseline without the settings named, which a check sets its own way. */
function baselineWithout(...settings: string[]): string {
  return SANDBOX_BASELINE.split("\n")
    .filter((line) => !settings.includes(line.slice(0, line.indexOf("="))))
    .join("\n");
}

/**
 * The sandbox both checks start from: they read the whole system, homes included, and write
 * nothing. `sandbox` holds what each sees beyond that.
 */
function checkService(description: string, docs: string, command: string, sandbox: string): string {
  const own = sandbox.split("\n").map((line) => line.slice(0, line.indexOf("=")));
  return `[Unit]
Description=${description}
Documentation=${docs}

[Service]
Type=oneshot
ExecStart=${INTEGRITY_TOOL} ${command}
# Findings are printed at priority err, next to debsums's and keel-backup's failures.
SyslogLevel=err
Nice=19
IOSchedulingClass=idle
${baselineWithout("ProtectHome", ...own)}
ProtectSystem=strict
ProtectHome=read-only
IPAddressDeny=any
${sandbox}
${SYSCALL_BASELINE}
`;
}

export function renderAideService(): string {
  return `# Managed by Keel: files no package checksum covers, against the baseline Keel's steps and apt
# last took. A change fails the unit, and each changed file is named in the journal.
${checkService(
  "Keel: check files against their baseline (AIDE)",
  "man:aide(1)",
  "files",
  `PrivateNetwork=true
CapabilityBoundingSet=CAP_DAC_READ_SEARCH
RestrictAddressFamilies=AF_UNIX`,
)}`;
}

/**
 * chkrootkit compares `ps` with /proc, lists /dev for files that are not devices, asks each
 * network interface whether it sniffs and reads files of every owner: it sees the host's
 * processes, devices (without opening one) and interfaces.
 */
export function renderRootkitService(): string {
  return `# Managed by Keel: Debian's chkrootkit, without the findings that are this server's own
# (${ROOTKIT_IGNORE}). A finding fails the unit and is named in the journal.
${checkService(
  "Keel: look for rootkits (chkrootkit)",
  "man:chkrootkit(8)",
  "rootkits",
  `ProtectProc=default
PrivateDevices=false
CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK`,
)}`;
}

function dailyTimer(description: string): string {
  return `# Managed by Keel.
[Unit]
Description=${description}

[Timer]
OnCalendar=daily
RandomizedDelaySec=6h
Persistent=true

[Install]
WantedBy=timers.target
`;
}

export const renderAideTimer = (): string => dailyTimer("Keel: daily file integrity check");
export const renderRootkitTimer = (): string => dailyTimer("Keel: daily rootkit scan");

/**
 * After every dpkg run (Keel's steps, security updates) AIDE takes a new baseline, so what apt
 * installed is not reported as an intrusion. It never fails apt: a security update must land.
 */
export function renderAptIntegrityHook(): string {
  return `// Managed by Keel: what apt installs becomes part of AIDE's baseline.
DPkg::Post-Invoke { "if [ -x ${INTEGRITY_TOOL} ]; then ${INTEGRITY_TOOL} accept apt || true; fi"; };
`;
}

/**
 * Process accounting's file, rotated by logrotate (Debian's rotation needs cron). The kernel
 * opens it for appending, so copying and truncating it loses nothing but the records of that
 * instant, and no restart of accounting is needed.
 */
export function renderAcctLogrotate(): string {
  return `# Managed by Keel: process accounting (acct), rotated daily or at 100 MB, 14 kept, compressed.
/var/log/account/pacct {
${LOG_ROTATION}
	copytruncate
}
`;
}
