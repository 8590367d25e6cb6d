// Fixed paths and ports on the server, shared by renderers, steps and tests.

/** Where the data volume is mounted: everything that must survive a droplet rebuild. */
export const DATA_DIR = "/srv/keel";
export const POSTGRES_DATA_DIR = `${DATA_DIR}/postgresql/17/main`;
export const RELEASES_DIR = `${DATA_DIR}/releases`;
/** Symlink to the release the API instances run. */
export const CURRENT_RELEASE = `${DATA_DIR}/current`;
/** Where the API release archive is copied before the api step unpacks it. */
export const UPLOADS_DIR = "/var/lib/keel/uploads";
/** Webroot for ACME HTTP-01 challenges. */
export const ACME_WEBROOT = "/var/lib/keel/acme";
export const API_ENV_FILE = "/etc/keel/api.env";
/**
 * API instance N (1 to 8) listens on 127.0.0.1:300N. Written as a prefix because the unit
 * template builds the port from its instance name: PORT=300%i.
 */
export const API_PORT_PREFIX = "300";

export function apiPort(instance: number): number {
  return Number(`${API_PORT_PREFIX}${instance}`);
}

export function uploadPath(releaseId: string): string {
  return `${UPLOADS_DIR}/api-${releaseId}.tar.gz`;
}
