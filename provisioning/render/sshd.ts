// sshd hardening drop-in. Named 00-… because sshd keeps the first value it reads for a keyword,
// so it wins over drop-ins a cloud image ships (e.g. 50-cloud-init.conf enabling passwords).

export function renderSshdConfig(sshUser: string): string {
  return `# Managed by Keel: SSH hardening. Changes here are overwritten by the next \`pulumi up\`.
# Keys only: no passwords, no keyboard-interactive, no empty passwords.
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
AuthenticationMethods publickey
# root logs in by key only when Pulumi provisions as root; otherwise not at all.
PermitRootLogin ${sshUser === "root" ? "prohibit-password" : "no"}
MaxAuthTries 3
LoginGraceTime 30
# No forwarding of any kind: the server is not a jump host.
AllowTcpForwarding no
AllowStreamLocalForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
GatewayPorts no
PermitUserEnvironment no
# Drop dead connections after about ten minutes.
ClientAliveInterval 300
ClientAliveCountMax 2
`;
}
