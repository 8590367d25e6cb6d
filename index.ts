// Keel: wiring only. Stack config -> cloud resources -> provisioning over SSH -> stack outputs.
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "./infra/config";
import { Dns } from "./infra/dns";
import { existingHost } from "./infra/host";
import { cloudNames, R2_REGION } from "./infra/names";
import { Secrets } from "./infra/secrets";
import { Server } from "./infra/server";
import { r2ObjectPermissionGroups, Storage } from "./infra/storage";
import { Uptime } from "./infra/uptime";
import { Provisioning } from "./provisioning/component";
import { buildRelease } from "./provisioning/release";
import { backupLockPrefixes } from "./provisioning/render/backup";
import { serverValues } from "./provisioning/server-values";

const config = loadStackConfig();
const names = cloudNames(config.stack, config.cloudflareAccountId);
const { prefix } = names;

const secrets = new Secrets("keel-secrets", {
  generation: config.secretsGeneration,
  generations: config.secretGenerations,
  backupPassphrase: config.backupPassphrase,
});

// Two buckets, each with a token scoped to it alone: the API's token cannot reach the backups.
const r2Permissions = r2ObjectPermissionGroups();
const storage = new Storage("keel-storage", {
  accountId: config.cloudflareAccountId,
  tokenName: `${prefix}-r2`,
  tokenGeneration: config.secretGenerations.evidenceToken,
  permissionGroups: r2Permissions,
  bucketName: names.bucketName,
  endpoint: names.r2Endpoint,
  retainData: config.retainData,
  adopt: config.adoptBuckets,
});
const backupStorage = new Storage("keel-backup-storage", {
  accountId: config.cloudflareAccountId,
  tokenName: `${prefix}-backups-r2`,
  tokenGeneration: config.secretGenerations.backupToken,
  permissionGroups: r2Permissions,
  bucketName: names.backupBucketName,
  endpoint: names.r2Endpoint,
  retainData: config.retainData,
  adopt: config.adoptBuckets,
  lock: { days: config.backupLockDays, prefixes: backupLockPrefixes() },
});

const host =
  config.existingHost !== undefined
    ? existingHost(config.existingHost)
    : new Server("keel-server", {
        prefix,
        region: config.region,
        size: config.dropletSize,
        sshPublicKey: config.sshPublicKey,
        sshAllowCidrs: config.sshAllowCidrs,
        volumeName: names.volumeName,
        volumeSizeGb: config.volumeSizeGb,
        retainData: config.retainData,
        adoptVolumeId: config.adoptVolumeId,
        alertEmail: config.alertEmail,
      }).host;

const dns = new Dns("keel-dns", {
  zoneId: config.cloudflareZoneId,
  hostname: config.apiHost,
  targets: host.dnsTargets,
});

new Uptime("keel-uptime", { prefix, apiHost: config.apiHost, alertEmail: config.alertEmail });

// keel:apiRelease deploys a release kept on the server, with no build and no upload.
const release =
  config.apiRelease === ""
    ? buildRelease(__dirname)
    : Promise.resolve({ id: config.apiRelease, archive: "" });

new Provisioning(
  "keel-provisioning",
  {
    host: host.address,
    user: config.sshUser,
    privateKey: config.sshPrivateKey,
    newServer: config.existingHost === undefined,
    uploadsRelease: config.apiRelease === "",
    sshAllowCidrs: config.sshAllowCidrs,
    serverId: host.id,
    values: pulumi
      .all([host.dataDevice, storage.bucketName, backupStorage.bucketName, release])
      .apply(([dataDevice, bucket, backupBucket, release]) =>
        serverValues(
          config,
          {
            dataDevice,
            storage: { endpoint: storage.endpoint, region: R2_REGION, bucket },
            backupStorage: {
              endpoint: backupStorage.endpoint,
              region: R2_REGION,
              bucket: backupBucket,
            },
          },
          release,
        ),
      ),
    secrets: {
      postgresPassword: secrets.postgresPassword,
      redisPassword: secrets.redisPassword,
      jwtSecret: secrets.jwtSecret,
      adminApiKey: secrets.adminApiKey,
      s3AccessKeyId: storage.accessKeyId,
      s3SecretAccessKey: storage.secretAccessKey,
      backupAccessKeyId: backupStorage.accessKeyId,
      backupSecretAccessKey: backupStorage.secretAccessKey,
      backupCipherPass: secrets.backupCipherPass,
      // Secret even when unset, so a step holding it is always a secret step.
      smtpPassword: pulumi.secret(config.smtpPassword ?? ""),
    },
  },
  // Certificates need DNS pointing at the server; SSH needs the address and the firewall.
  { dependsOn: [...dns.records, ...host.ready] },
);

export const apiUrl = `https://${config.apiHost}`;
export const serverIp = pulumi.output(host.address);
export const bucketName = storage.bucketName;
export const adminApiKey = secrets.adminApiKey;
export const backupBucketName = backupStorage.bucketName;
/** Keep it somewhere safe outside this stack: without it the backups cannot be read. */
export const backupPassphrase = secrets.backupCipherPass;
