// sshd hardening drop-in. Named 00-… because sshd keeps the first value it reads for a keyword,
// so it wins over drop-ins a cloud image ships (e.g. 50-cloud-init.conf enabling passwords).
import { DASHBOARD_TARGET, OPERATOR_KEYS_FILE, OPERATOR_USER, OPS_TOOL } from "./operator";

/** Host key algorithms sshd offers: Ed25519 first, RSA (3072-bit keys) with SHA-2 for old clients. */
export const HOST_KEY_ALGORITHMS = ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"] as const;
/** Key exchanges: the hybrid post-quantum ones OpenSSH prefers, then plain curve25519. */
export const KEX_ALGORITHMS = [
  "mlkem768x25519-sha256",
  "sntrup761x25519-sha512",
  "sntrup761x25519-sha512@openssh.com",
  "curve25519-sha256",
  "curve25519-sha256@libssh.org",
] as const;
export const CIPHERS = [
  "chacha20-poly1305@openssh.com",
  "aes256-gcm@openssh.com",
  "aes128-gcm@openssh.com",
  "aes256-ctr",
  "aes192-ctr",
  "aes128-ctr",
] as const;
/** Encrypt-then-MAC only, with tags of 128 bits or more. */
export const MACS = [
  "hmac-sha2-256-etm@openssh.com",
  "hmac-sha2-512-etm@openssh.com",
  "umac-128-etm@openssh.com",
] as const;

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
# No other account logs in over SSH, whatever keys it may have; operators log in as ${OPERATOR_USER}.
AllowUsers ${sshUser} ${OPERATOR_USER}
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
# Drop dead connections after about ten minutes (ClientAlive, inside the encrypted channel; the
# spoofable TCP keepalive is off).
ClientAliveInterval 300
ClientAliveCountMax 2
TCPKeepAlive no
# Two sessions per connection at most; log each key's fingerprint at login.
MaxSessions 2
LogLevel VERBOSE
# Algorithms: none that ssh-audit fails or warns about (no NIST curves, no SHA-1, no 64-bit or
# encrypt-and-MAC tags). Each list shares algorithms with Go's golang.org/x/crypto/ssh, the client
# inside Pulumi's command provider (curve25519, AES-GCM, ChaCha20, SHA-2 ETM MACs, Ed25519, RSA).
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_rsa_key
HostKeyAlgorithms ${HOST_KEY_ALGORITHMS.join(",")}
KexAlgorithms ${KEX_ALGORITHMS.join(",")}
Ciphers ${CIPHERS.join(",")}
MACs ${MACS.join(",")}
# Operators (keel:operatorKeys): whatever they ask, ${OPERATOR_USER}'s keys run ${OPS_TOOL}, with no
# terminal; the one forwarding allowed is a local tunnel to the metrics UI (${DASHBOARD_TARGET}).
# A Match block runs to the end of this file; nothing may follow it.
Match User ${OPERATOR_USER}
	AuthorizedKeysFile ${OPERATOR_KEYS_FILE}
	ForceCommand ${OPS_TOOL}
	PermitTTY no
	PermitUserRC no
	AllowTcpForwarding local
	PermitOpen ${DASHBOARD_TARGET}
	PermitListen none
	AllowStreamLocalForwarding no
	AllowAgentForwarding no
	X11Forwarding no
	PermitTunnel no
`;
}
