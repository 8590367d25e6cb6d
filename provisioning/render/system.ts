// System settings of the base step: journald limits, log rotation, security updates, kernel settings, swap
// and the data volume's mount unit.
import { DATA_DIR } from "../layout";

/**
 * How Keel's logrotate entries rotate a log: daily, or within the hour once it passes 100 MB
 * (logrotate runs hourly), 14 kept, compressed but for the newest rotated one.
 */
export const LOG_ROTATION = `\tdaily
\tmaxsize 100M
\tmissingok
\trotate 14
\tcompress
\tdelaycompress
\tnotifempty`;

export function renderJournald(): string {
  return `# Managed by Keel: keep the journal on disk, bounded in size and age.
[Journal]
Storage=persistent
SystemMaxUse=500M
SystemKeepFree=1G
SystemMaxFileSize=50M
MaxRetentionSec=1month
`;
}

export function renderAutoUpgrades(): string {
  return `// Managed by Keel: refresh package lists and install security updates daily.
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
`;
}

export function renderUnattendedUpgrades(): string {
  return `// Managed by Keel: security updates only, and never an unannounced reboot.
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {
  "origin=Debian,codename=\${distro_codename}-security,label=Debian-Security";
};
Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";
Unattended-Upgrade::Remove-Unused-Dependencies "true";
Unattended-Upgrade::Automatic-Reboot "false";
`;
}

export function renderSysctl(): string {
  return `# Managed by Keel.
# Redis forks for nothing (persistence is off) but recommends this to avoid allocation failures.
vm.overcommit_memory = 1
# Prefer dropping caches to swapping out Postgres and the API.
vm.swappiness = 10
`;
}

/** Swap for small servers: 2 GB below 4 GB of memory, none above. */
export function swapSizeMb(memoryMb: number): number {
  return memoryMb < 4096 ? 2048 : 0;
}

/** systemd unit name of the data volume's mount point. */
export const DATA_MOUNT_UNIT = "srv-keel.mount";

export function renderDataMount(device: string): string {
  return `# Managed by Keel: the data volume (Postgres cluster, certificates, API releases).
# Services holding data declare RequiresMountsFor=${DATA_DIR}, so they never start without it.
[Unit]
Description=Keel data volume
Before=local-fs.target

[Mount]
What=${device}
Where=${DATA_DIR}
Type=ext4
Options=defaults,noatime,discard

[Install]
WantedBy=local-fs.target
`;
}
