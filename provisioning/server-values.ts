// The one mapping from a stack's validated settings to the values provisioning is built from.
// `pulumi up` (index.ts) feeds it the cloud's real outputs; `npm run render` and
// `npm run check` feed it the outputs the cloud will produce (plannedCloud); the local platform
// and the e2e tier feed it the stand-in's. So every driver hands buildStep the same values.
import type { Settings } from "../infra/config-rules";
import { cloudNames, R2_REGION, volumeDevice } from "../infra/names";
import { walQueueMaxMb } from "./render/backup";
import type { ReleaseValues, ServerValues, StorageValues } from "./values";

/** What the cloud (or the stand-in) provides to the server. */
export interface CloudValues {
  /** Block device of the data volume, or "" to keep the data on the root disk. */
  readonly dataDevice: string;
  readonly storage: StorageValues;
  /** The backup bucket, reached with its own credentials. */
  readonly backupStorage: StorageValues;
}

export function serverValues(
  settings: Settings,
  cloud: CloudValues,
  release: ReleaseValues,
): ServerValues {
  return {
    apiHost: settings.apiHost,
    acmeEmail: settings.acmeEmail,
    acmeServer: settings.acmeServer,
    sshUser: settings.sshUser,
    sshAllowCidrs: settings.sshAllowCidrs,
    operatorKeys: settings.operatorKeys,
    frontendOrigins: settings.frontendOrigins,
    apiInstances: settings.apiInstances,
    memoryMb: settings.memoryMb,
    rateLimits: settings.rateLimits,
    releaseWatch: settings.releaseWatch,
    alerts: { email: settings.alertEmail, smtp: settings.smtp ?? null },
    dataDevice: cloud.dataDevice,
    storage: cloud.storage,
    backup: {
      storage: cloud.backupStorage,
      retentionFull: settings.backupRetentionFull,
      queueMaxMb: walQueueMaxMb(settings.volumeSizeGb),
    },
    restore: settings.restore,
    release,
  };
}

/** The cloud values `pulumi up` will produce for this stack, predicted from its names. */
export function plannedCloud(stack: string, settings: Settings): CloudValues {
  const names = cloudNames(stack, settings.cloudflareAccountId);
  return {
    dataDevice: settings.existingHost === undefined ? volumeDevice(names.volumeName) : "",
    storage: { endpoint: names.r2Endpoint, region: R2_REGION, bucket: names.bucketName },
    backupStorage: {
      endpoint: names.r2Endpoint,
      region: R2_REGION,
      bucket: names.backupBucketName,
    },
  };
}
