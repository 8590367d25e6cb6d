// The systemd sandbox every Keel unit and drop-in starts from: no access to homes, devices,
// kernel knobs, clocks or other users' processes, and no new privileges.
export const SANDBOX_BASELINE = `NoNewPrivileges=true
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
DevicePolicy=closed
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
ProtectProc=invisible
RestrictNamespaces=true
RestrictRealtime=true
RestrictSUIDSGID=true
LockPersonality=true
SystemCallArchitectures=native
KeyringMode=private`;

/** The system calls a service that is not a JIT and changes no clock, mount or module needs. */
export const SYSCALL_BASELINE = `SystemCallFilter=@system-service
SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @swap
MemoryDenyWriteExecute=true`;
