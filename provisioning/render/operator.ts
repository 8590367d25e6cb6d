// The operator's way in (keel:operatorKeys): the keel-ops account, whose keys run the keel-ops
// program and nothing else, and the settings that program reads.

/** The account operators' keys log in as. */
export const OPERATOR_USER = "keel-ops";
/** The program sshd forces for OPERATOR_USER (provisioning/server/keel-ops.sh). */
export const OPS_TOOL = "/usr/local/sbin/keel-ops";
/**
 * The operators' public keys. sshd reads them as keel-ops (which cannot read /etc/keel), so the
 * file is world-readable; only root can change it.
 */
export const OPERATOR_KEYS_FILE = "/etc/ssh/keel-operator-keys";
/** Plain settings keel-ops reads (its account cannot read /etc/keel). */
export const OPS_SETTINGS_FILE = "/etc/default/keel-ops";

/**
 * authorized_keys for OPERATOR_USER: each key runs OPS_TOOL with no terminal and no forwarding
 * (`restrict`), whatever the client asks. sshd's Match block forces the same for any key.
 */
export function renderOperatorKeys(keys: readonly string[]): string {
  const lines = keys.map((key) => `restrict,command="${OPS_TOOL}" ${key}`);
  return [
    "# Managed by Keel from keel:operatorKeys: each key runs keel-ops' fixed verbs, nothing else.",
    ...lines,
    "",
  ].join("\n");
}

export function renderOpsSettings(apiHost: string): string {
  return `# Managed by Keel: what keel-ops needs to know about this server.
API_HOST=${apiHost}
`;
}
