// The names a stack gives its cloud resources, derived in one place: the infra components
// create resources with them, and the offline tools (render, check, local) predict what those
// resources will be called without asking any cloud.

/** The names of one stack's cloud resources. */
export interface CloudNames {
  /** Prefix of every cloud name, e.g. keel-staging. */
  readonly prefix: string;
  /** The DigitalOcean block volume holding the data. */
  readonly volumeName: string;
  /** The R2 bucket holding evidence files. */
  readonly bucketName: string;
  /** The R2 bucket holding database backups, with a token of its own. */
  readonly backupBucketName: string;
  /** The S3 API endpoint of the Cloudflare account's R2. */
  readonly r2Endpoint: string;
}

export function cloudNames(stack: string, cloudflareAccountId: string): CloudNames {
  const prefix = `keel-${stack}`;
  return {
    prefix,
    volumeName: `${prefix}-data`,
    bucketName: `${prefix}-evidence`,
    backupBucketName: `${prefix}-backups`,
    r2Endpoint: `https://${cloudflareAccountId}.r2.cloudflarestorage.com`,
  };
}

/** R2's region name for the S3 API: R2 has one, "auto". */
export const R2_REGION = "auto";

/** The by-id path under which a DigitalOcean volume appears on its droplet. */
export function volumeDevice(volumeName: string): string {
  return `/dev/disk/by-id/scsi-0DO_Volume_${volumeName}`;
}
