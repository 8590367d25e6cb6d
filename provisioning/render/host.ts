// Host hardening of the base step that lynis audits: kernel modules a web server never needs,
// login banners, needrestart's mode, sysstat's switch and debsums' schedule.

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

export function renderDebsumsDefaults(): string {
  return `# Managed by Keel: debsums checks every installed package's files against their recorded
# checksums once a week (cron mails or logs what changed).
CRON_CHECK=weekly
`;
}
