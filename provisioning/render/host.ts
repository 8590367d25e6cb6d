// Host hardening of the base step that lynis audits: kernel modules a web server never needs,
// kernel settings, core dumps, idle shells, login banners, needrestart, sysstat and debsums.
import { SANDBOX_BASELINE, SYSCALL_BASELINE } from "./sandbox";

/** Network protocols and storage buses a droplet serving an API never uses. */
export const UNUSED_KERNEL_MODULES = [
  "dccp",
  "sctp",
  "rds",
  "tipc",
  "usb-storage",
  "firewire-core",
] as const;

export function renderModuleBlacklist(): string {
  const lines = UNUSED_KERNEL_MODULES.map(
    (module) => `blacklist ${module}\ninstall ${module} /bin/false`,
  );
  return `# Managed by Keel: kernel modules this server never needs are neither loaded automatically
# nor on request (fewer kernel paths an attacker can reach).
${lines.join("\n")}
`;
}

/** The text of /etc/issue and /etc/issue.net: shown before a login, and no version numbers. */
export function renderLoginBanner(): string {
  return `Authorised access only. Activity on this system is logged and monitored.
`;
}

export function renderNeedrestart(): string {
  return `# Managed by Keel: after an upgrade, needrestart lists the services that still run old
# libraries (in the step's output and the apt log) but restarts none: Keel's steps and rolling
# releases decide when a service restarts.
$nrconf{restart} = 'l';
`;
}

export function renderSysstatDefaults(): string {
  return `# Managed by Keel: sysstat records CPU, memory, disk and network use every ten minutes;
# \`sar\` reads them back.
ENABLED="true"
`;
}

/** Keel's weekly debsums check: Debian's runs from cron, which a minimal Debian 13 lacks. */
export const DEBSUMS_UNIT = "keel-debsums";

export function renderDebsumsDefaults(): string {
  return `# Managed by Keel: debsums runs from Keel's own timer (${DEBSUMS_UNIT}.timer), not from cron.
CRON_CHECK=never
`;
}

/**
 * Kernel settings of lynis's scan profile (KRNL-6000), hardened. Every one is safe for a server
 * that routes nothing. Left out: `kernel.modules_disabled` (nftables and fail2ban load modules
 * after boot) and `net.ipv4.conf.all.mc_forwarding` (read-only; 0 unless a multicast router runs).
 */
export const KERNEL_HARDENING: Readonly<Record<string, number>> = {
  // Files: no following of others' links in sticky directories, no creating files there.
  "fs.protected_fifos": 2,
  "fs.protected_hardlinks": 1,
  "fs.protected_regular": 2,
  "fs.protected_symlinks": 1,
  // Core dumps (they hold secrets): never for setuid programs, and named by PID when allowed.
  "fs.suid_dumpable": 0,
  "kernel.core_uses_pid": 1,
  // Kernel pointers, logs, BPF, perf and ptrace closed to unprivileged users.
  "kernel.kptr_restrict": 2,
  "kernel.dmesg_restrict": 1,
  "kernel.unprivileged_bpf_disabled": 1,
  "net.core.bpf_jit_harden": 2,
  "kernel.perf_event_paranoid": 3,
  "kernel.yama.ptrace_scope": 1,
  "kernel.randomize_va_space": 2,
  // No console key combinations, no line disciplines loaded on demand.
  "kernel.sysrq": 0,
  "kernel.ctrl-alt-del": 0,
  "dev.tty.ldisc_autoload": 0,
  // Network: the server routes nothing, takes no redirects or source routes, drops spoofed
  // sources and logs impossible ones.
  "net.ipv4.conf.all.forwarding": 0,
  "net.ipv4.conf.all.proxy_arp": 0,
  "net.ipv4.conf.all.bootp_relay": 0,
  "net.ipv4.conf.all.rp_filter": 1,
  "net.ipv4.conf.all.accept_redirects": 0,
  "net.ipv4.conf.default.accept_redirects": 0,
  "net.ipv4.conf.all.send_redirects": 0,
  "net.ipv4.conf.all.accept_source_route": 0,
  "net.ipv4.conf.default.accept_source_route": 0,
  "net.ipv4.conf.all.log_martians": 1,
  "net.ipv4.conf.default.log_martians": 1,
  "net.ipv4.icmp_echo_ignore_broadcasts": 1,
  "net.ipv4.icmp_ignore_bogus_error_responses": 1,
  "net.ipv4.tcp_syncookies": 1,
  "net.ipv6.conf.all.accept_redirects": 0,
  "net.ipv6.conf.default.accept_redirects": 0,
  "net.ipv6.conf.all.accept_source_route": 0,
  "net.ipv6.conf.default.accept_source_route": 0,
};

export function renderKernelHardening(): string {
  const lines = Object.entries(KERNEL_HARDENING).map(([key, value]) => `${key} = ${value}`);
  return `# Managed by Keel: kernel hardening (lynis's scan profile). Applied by the base step and at
# every boot; a container applies none (its kernel settings are the host's).
${lines.join("\n")}
`;
}

/** Core dumps hold whatever the process held (keys, passwords): none, for logins and services. */
export function renderCoreDumpLimits(): string {
  return `# Managed by Keel: no core dumps for any login session (they would hold secrets).
*	soft	core	0
*	hard	core	0
`;
}

export function renderCoredumpConf(): string {
  return `# Managed by Keel: should systemd-coredump ever be installed, it keeps no core dump.
[Coredump]
Storage=none
ProcessSizeMax=0
`;
}

/** Login shells: no core dumps, and an idle interactive shell ends after 15 minutes. */
export function renderShellProfile(): string {
  return `# Managed by Keel: login shells dump no core, and an interactive one left idle for 15 minutes
# ends (Pulumi's commands are not login shells and never read this).
ulimit -c 0
case $- in
  *i*) [ "\${TMOUT:-}" = 900 ] || { TMOUT=900; readonly TMOUT; export TMOUT; } ;;
esac
`;
}

export function renderDebsumsService(): string {
  return `# Managed by Keel: every installed package's files against their recorded checksums (changed
# configuration files excepted). A changed file fails the unit and is named in the journal.
[Unit]
Description=Keel: check installed packages' files (debsums)
Documentation=man:debsums(1)

[Service]
Type=oneshot
ExecStart=/usr/bin/debsums --silent
# debsums --silent prints only what is wrong: at priority err, with keel-backup's failures.
SyslogLevel=err
Nice=19
IOSchedulingClass=idle
${SANDBOX_BASELINE}
ProtectSystem=strict
PrivateNetwork=true
CapabilityBoundingSet=CAP_DAC_READ_SEARCH
RestrictAddressFamilies=AF_UNIX
IPAddressDeny=any
${SYSCALL_BASELINE}
`;
}

export function renderDebsumsTimer(): string {
  return `# Managed by Keel.
[Unit]
Description=Keel: weekly debsums check

[Timer]
OnCalendar=weekly
RandomizedDelaySec=6h
Persistent=true

[Install]
WantedBy=timers.target
`;
}
