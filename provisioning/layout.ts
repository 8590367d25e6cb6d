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
/** The keys that verify access tokens besides the one that signs them; the api step keeps it. */
export const JWT_KEYS_FILE = "/etc/keel/jwt-keys";
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

/** pgBackRest's stanza: the name of Keel's cluster in the backup repository. */
export const BACKUP_STANZA = "keel";
/** The repository's root inside the backup bucket. */
export const BACKUP_REPO_PATH = "/keel";
/** Backup state on the volume: pgBackRest's spool (the local WAL queue), marks and results. */
export const BACKUP_DIR = `${DATA_DIR}/backup`;
export const BACKUP_SPOOL_DIR = `${BACKUP_DIR}/spool`;
export const BACKUP_STATE_DIR = `${BACKUP_DIR}/state`;
/** Where restore drills restore into, and where a restore keeps the cluster it replaced. */
export const DRILL_DIR = `${BACKUP_DIR}/drill`;
export const REPLACED_DIR = `${DATA_DIR}/postgresql/replaced`;
/** The drill's throwaway PostgreSQL listens on a Unix socket of this port number only. */
export const DRILL_PORT = 5499;
/** The backup state as Prometheus metrics, on loopback only. */
export const BACKUP_METRICS_PORT = 9188;
/** Facts the backup tools on the server read (a shell file, rendered from the values above). */
export const BACKUP_LAYOUT_FILE = "/etc/pgbackrest/keel.env";
export const PGBACKREST_CONF = "/etc/pgbackrest/pgbackrest.conf";
/** pgBackRest's lock directory, shared by archive-push (inside PostgreSQL) and the backup units. */
export const PGBACKREST_LOCK_DIR = "/run/postgresql/pgbackrest";
