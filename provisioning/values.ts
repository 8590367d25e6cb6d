// The plain values provisioning is built from. Both drivers produce them: the Pulumi component
// by resolving stack outputs, the end-to-end runner and `npm run render` directly.
import type { RateLimits, ReleaseWatch, SmtpSettings } from "../infra/config-rules";
import type { BackupValues } from "./render/backup";

export interface StorageValues {
  /** S3 API endpoint, e.g. https://<account>.r2.cloudflarestorage.com. */
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
}

export interface ReleaseValues {
  /** Content hash of the API release archive; names /srv/keel/releases/<id>. */
  readonly id: string;
  /**
   * Local path of the release archive (a .tar.gz of dist/api); "" for a release already kept on
   * the server (keel:apiRelease), which nothing uploads.
   */
  readonly archive: string;
}

/** Where the server's alerts go: e-mail to `email` when `smtp` is set, else only `ops status`. */
export interface AlertValues {
  /** keel:alertEmail (default keel:acmeEmail). */
  readonly email: string;
  /** keel:smtp; its password travels as the smtpPassword secret. */
  readonly smtp: SmtpSettings | null;
}

export interface ServerValues {
  /** The public API host, e.g. api.example.com. */
  readonly apiHost: string;
  readonly acmeEmail: string;
  /** ACME directory URL certbot issues from. */
  readonly acmeServer: string;
  /** The SSH user provisioning runs as; root logs in by key only, any other user uses sudo. */
  readonly sshUser: string;
  readonly sshAllowCidrs: readonly string[];
  /** Operators' public keys; each logs in as keel-ops and runs only keel-ops' fixed verbs. */
  readonly operatorKeys: readonly string[];
  readonly frontendOrigins: readonly string[];
  readonly apiInstances: number;
  /** Memory of the server; Postgres, Redis, swap and the API's limits are sized from it. */
  readonly memoryMb: number;
  readonly rateLimits: RateLimits;
  /** How long a new API release is watched through nginx, and the error rate and latency that roll it back. */
  readonly releaseWatch: ReleaseWatch;
  readonly alerts: AlertValues;
  /** Block device of the data volume, or "" to keep the data directory on the root disk. */
  readonly dataDevice: string;
  readonly storage: StorageValues;
  /** The backup repository (its own bucket) and policy. */
  readonly backup: BackupValues;
  /** keel:restore: "", "latest", "undo" or a UTC time; the restore step applies it once. */
  readonly restore: string;
  readonly release: ReleaseValues;
}

/** Secrets the server needs. They reach it only inside a step's stdin. */
export interface SecretValues {
  readonly postgresPassword: string;
  readonly redisPassword: string;
  readonly jwtSecret: string;
  readonly adminApiKey: string;
  readonly s3AccessKeyId: string;
  readonly s3SecretAccessKey: string;
  /** The backup bucket's own credentials: the API's cannot reach the backups. */
  readonly backupAccessKeyId: string;
  readonly backupSecretAccessKey: string;
  /** Encrypts the backup repository. */
  readonly backupCipherPass: string;
  /** keel:smtpPassword: the SMTP server's password for alert mail; "" when none is set. */
  readonly smtpPassword: string;
}

export type SecretName = keyof SecretValues;
