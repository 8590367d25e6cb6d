// The operator's way in (keel:operatorKeys): the keel-ops account, whose keys run the keel-ops
// program and nothing else (besides a tunnel to the metrics UI), and the settings that program
// reads.
import { PROMETHEUS_PORT } from "./monitoring";

/** The account operators' keys log in as. */
export const OPERATOR_USER = "keel-ops";
/** The program sshd forces for OPERATOR_USER (provisioning/server/keel-ops.sh). */
export const OPS_TOOL = "/usr/local/sbin/keel-ops";
/**
 * The operators' public keys. sshd reads them as keel-ops (which cannot read /etc/keel), so the
 * file is world-readable; only root can change it.
 */
export const OPERATOR_KEYS_FILE = "/etc/ssh/keel-operator-keys";
/**
 * The one place an operator's key may forward to: the metrics UI (Prometheus, loopback only on
 * the server), for `npm run ops -- dashboard`.
 */
export const DASHBOARD_TARGET = `127.0.0.1:${PROMETHEUS_PORT}`;

/** Plain settings keel-ops reads (its account cannot read /etc/keel). */
export const OPS_SETTINGS_FILE = "/etc/default/keel-ops";

/**
 * authorized_keys for OPERATOR_USER: each key runs OPS_TOOL with no terminal (`restrict`),
 * whatever the client asks, and may forward to DASHBOARD_TARGET only. sshd's Match block forces
 * the same for any key.
 */
export function renderOperatorKeys(keys: readonly string[]): string {
  const lines = keys.map(
    (key) =>
      `restrict,port-forwarding,permitopen="${DASHBOARD_TARGET}",command="${OPS_TOOL}" ${key}`,
  );
  return [
    "# Managed by Keel from keel:operatorKeys: each key runs keel-ops' fixed verbs and opens the",
    `# metrics UI's tunnel (${DASHBOARD_TARGET}), nothing else.`,
    ...lines,
    "",
  ].join("\n");
}

export function renderOpsSettings(apiHost: string): string {
  return `# Managed by Keel: what keel-ops needs to know about this server.
API_HOST=${apiHost}
`;
}
