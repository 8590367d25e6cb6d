// Keel: wiring only. Stack config -> cloud resources -> provisioning over SSH -> stack outputs.
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "./infra/config";
import { Dns } from "./infra/dns";
import { existingHost } from "./infra/host";
import { Secrets } from "./infra/secrets";
import { Server } from "./infra/server";
import { Storage } from "./infra/storage";
import { Uptime } from "./infra/uptime";
import { Provisioning } from "./provisioning/component";
import { buildRelease } from "./provisioning/release";

const config = loadStackConfig();
const prefix = `keel-${config.stack}`;

const secrets = new Secrets("keel-secrets", { generation: config.secretsGeneration });

const storage = new Storage("keel-storage", {
  prefix,
  accountId: config.cloudflareAccountId,
  retainData: config.retainData,
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
        volumeSizeGb: config.volumeSizeGb,
        retainData: config.retainData,
        alertEmail: config.alertEmail,
      }).host;

const dns = new Dns("keel-dns", {
  zoneId: config.cloudflareZoneId,
  hostname: config.apiHost,
  targets: host.dnsTargets,
});

new Uptime("keel-uptime", { prefix, apiHost: config.apiHost, alertEmail: config.alertEmail });

new Provisioning(
  "keel-provisioning",
  {
    host: host.address,
    user: config.sshUser,
    privateKey: config.sshPrivateKey,
    serverId: host.id,
    values: pulumi.output({
      apiHost: config.apiHost,
      acmeEmail: config.acmeEmail,
      acmeServer: config.acmeServer,
      sshUser: config.sshUser,
      sshAllowCidrs: config.sshAllowCidrs,
      frontendOrigins: config.frontendOrigins,
      apiInstances: config.apiInstances,
      memoryMb: config.memoryMb,
      rateLimits: config.rateLimits,
      dataDevice: host.dataDevice,
      storage: { endpoint: storage.endpoint, region: "auto", bucket: storage.bucketName },
      release: buildRelease(__dirname),
    }),
    secrets: {
      postgresPassword: secrets.postgresPassword,
      redisPassword: secrets.redisPassword,
      jwtSecret: secrets.jwtSecret,
      adminApiKey: secrets.adminApiKey,
      s3AccessKeyId: storage.accessKeyId,
      s3SecretAccessKey: storage.secretAccessKey,
    },
  },
  // Certificates need DNS pointing at the server; SSH needs the address and the firewall.
  { dependsOn: [...dns.records, ...host.ready] },
);

export const apiUrl = `https://${config.apiHost}`;
export const serverIp = pulumi.output(host.address);
export const bucketName = storage.bucketName;
export const adminApiKey = secrets.adminApiKey;
