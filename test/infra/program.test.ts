// The whole Pulumi program (index.ts) under Pulumi's mocks: what it registers, how resources
// depend on each other, and that secrets stay secret. Every assertion runs after the program's
// outputs have resolved and its registrations have drained.
import { createHash } from "node:crypto";
import { expect } from "chai";
import { bucketResource, EMPTY_BUCKET_COMMAND } from "../../infra/storage";
import { REACH_COMMAND } from "../../provisioning/reach";
import { decodePayload } from "../../provisioning/payload";
import { STEP_NAMES, STEPS } from "../../provisioning/steps";
import {
  byType,
  isSecretInput,
  MOCK_DROPLET_IPV6,
  MOCK_RESERVED_IP,
  MOCK_TOKEN_VALUE,
  mockPassword,
  mockTokenValue,
  one,
  PERMISSION_GROUP_IDS,
  plain,
  ProgramFailure,
  runProgram,
  stagingConfig,
  type ProgramRun,
  type Registered,
} from "./program";

const DROPLET = "digitalocean:index/droplet:Droplet";
const FIREWALL = "digitalocean:index/firewall:Firewall";
const DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord";
const COMMAND = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";

interface FirewallRule {
  protocol: string;
  portRange?: string;
  sourceAddresses?: string[];
}

async function failureOf(config: Record<string, unknown>): Promise<ProgramFailure> {
  try {
    await runProgram(config);
  } catch (err) {
    if (err instanceof ProgramFailure) return err;
    throw err;
  }
  throw new Error("the program accepted a bad configuration");
}

function command(run: ProgramRun, step: string): Registered {
  return one(run, COMMAND, `keel-provisioning-${step}`);
}

/**
 * What a resource's inputs hold in plain text: secrets left out, and a plain payload on stdin
 * decoded, so a secret inside one of its files shows.
 */
function plainText(value: unknown): string {
  if (isSecretInput(value)) return "";
  if (Array.isArray(value)) return value.map(plainText).join("\n");
  if (typeof value === "object" && value !== null) {
    return Object.entries(value)
      .map(([key, v]) => `${key}: ${plainText(v)}`)
      .join("\n");
  }
  if (typeof value !== "string") return String(value);
  try {
    return [value, ...decodePayload(value).map((f) => f.content)].join("\n");
  } catch {
    return value;
  }
}

function triggerOf(run: ProgramRun, step: string): string {
  const triggers = plain(command(run, step).inputs.triggers) as unknown[];
  return JSON.stringify(triggers.map(plain));
}

describe("the Pulumi program under mocks", () => {
  let staging: ProgramRun;

  before(async () => {
    staging = await runProgram(stagingConfig());
  });

  it("when deployed, then the droplet runs Debian 13 at the configured size and region", () => {
    const [droplet, ...others] = byType(staging, DROPLET);
    expect(others).to.have.length(0);
    expect(droplet?.inputs).to.include({
      image: "debian-13-x64",
      size: "s-1vcpu-2gb",
      region: "fra1",
      monitoring: true,
      ipv6: true,
    });
  });

  it("when deployed, then the firewall opens 80/443 to all and 22 only to the allowed CIDRs", () => {
    const [firewall] = byType(staging, FIREWALL);
    const rules = firewall?.inputs.inboundRules as FirewallRule[];
    const ports = rules.map((r) => r.portRange).sort();
    expect(ports).to.deep.equal(["22", "443", "80"]);
    for (const rule of rules) expect(rule.protocol).to.equal("tcp");
    const ssh = rules.find((r) => r.portRange === "22");
    expect(ssh?.sourceAddresses).to.deep.equal(["85.10.197.7/32", "2a02:8108:1d40::/48"]);
    for (const rule of rules.filter((r) => r.portRange !== "22")) {
      expect(rule.sourceAddresses).to.deep.equal(["0.0.0.0/0", "::/0"]);
    }
    expect(ssh?.sourceAddresses).not.to.include.members(["0.0.0.0/0", "::/0"]);
  });

  it("when deployed, then the volume, reserved IP and alerts belong to the droplet, and uptime checks watch /health and /ready", () => {
    const volume = one(staging, "digitalocean:index/volume:Volume", "keel-server-data");
    expect(volume.inputs).to.include({ name: "keel-staging-data", size: 10, region: "fra1" });
    expect(byType(staging, "digitalocean:index/volumeAttachment:VolumeAttachment")).to.have.length(
      1,
    );
    expect(
      byType(staging, "digitalocean:index/reservedIpAssignment:ReservedIpAssignment"),
    ).to.have.length(1);
    const alerts = byType(staging, "digitalocean:index/monitorAlert:MonitorAlert");
    expect(alerts.map((a) => a.inputs.type).sort()).to.deep.equal([
      "v1/insights/droplet/cpu",
      "v1/insights/droplet/disk_utilization_percent",
      "v1/insights/droplet/memory_utilization_percent",
    ]);
    for (const alert of alerts) {
      expect(alert.inputs).to.include({ window: "5m", compare: "GreaterThan" });
      expect(alert.inputs.alerts).to.deep.equal({ emails: ["ops@keel-ci.dev"] });
    }
    const check = one(staging, "digitalocean:index/uptimeCheck:UptimeCheck", "keel-uptime-check");
    expect(check.inputs.target).to.equal("https://api.keel-ci.dev/health");
    const ready = one(
      staging,
      "digitalocean:index/uptimeCheck:UptimeCheck",
      "keel-uptime-ready-check",
    );
    expect(ready.inputs.target).to.equal("https://api.keel-ci.dev/ready");
    const uptimeAlerts = byType(staging, "digitalocean:index/uptimeAlert:UptimeAlert");
    expect(uptimeAlerts.map((a) => a.inputs.type).sort()).to.deep.equal([
      "down",
      "down",
      "ssl_expiry",
    ]);
  });

  it("when deployed, then DNS points the API host at the reserved IP and the droplet's IPv6", () => {
    const records = byType(staging, DNS_RECORD).map((r) => r.inputs);
    expect(records).to.have.length(2);
    expect(records.find((r) => r.type === "A")).to.include({
      name: "api.keel-ci.dev",
      content: MOCK_RESERVED_IP,
      zoneId: "0123456789abcdef0123456789abcdef",
      proxied: false,
    });
    expect(records.find((r) => r.type === "AAAA")).to.include({ content: MOCK_DROPLET_IPV6 });
  });

  it("when deployed, then the R2 token may read and write objects of the one bucket only", () => {
    const token = one(staging, "cloudflare:index/apiToken:ApiToken", "keel-storage-token");
    const policies = token.inputs.policies as Array<{
      effect: string;
      permissionGroups: Array<{ id: string }>;
      resources: string;
    }>;
    expect(policies).to.have.length(1);
    const [policy] = policies;
    expect(policy?.effect).to.equal("allow");
    expect(policy?.permissionGroups.map((g) => g.id).sort()).to.deep.equal(
      Object.values(PERMISSION_GROUP_IDS).sort(),
    );
    expect(JSON.parse(policy?.resources ?? "{}")).to.deep.equal({
      [bucketResource("fedcba9876543210fedcba9876543210", "keel-staging-evidence")]: "*",
    });
    const bucket = one(staging, "cloudflare:index/r2Bucket:R2Bucket", "keel-storage-bucket");
    expect(bucket.inputs.name).to.equal("keel-staging-evidence");
  });

  it("when deployed, then the only provider calls are the permission-group lookups", () => {
    expect(staging.calls).to.have.length(2);
    expect(new Set(staging.calls)).to.deep.equal(
      new Set(["cloudflare:index/getApiTokenPermissionGroupsList:getApiTokenPermissionGroupsList"]),
    );
  });

  it("when deployed, then the outputs are the API URL, server IP, bucket and admin key", () => {
    expect(staging.outputs.apiUrl).to.equal("https://api.keel-ci.dev");
    expect(staging.outputs.serverIp).to.equal(MOCK_RESERVED_IP);
    expect(staging.outputs.bucketName).to.equal("keel-staging-evidence");
    expect(staging.outputs.adminApiKey).to.equal(mockPassword("keel-secrets-admin-api-key", "1"));
  });

  it("when deployed, then the admin key and the backup passphrase outputs are secret and the others are not", () => {
    expect(staging.secretOutputs).to.deep.equal(["adminApiKey", "backupPassphrase"]);
  });

  it("when deployed, then every step runs over SSH in order, after DNS and the droplet are ready", () => {
    for (const [index, step] of STEP_NAMES.entries()) {
      const registered = command(staging, step);
      const previous = [`keel-provisioning-${index === 0 ? "reach" : STEP_NAMES[index - 1]}`];
      if (step === "api") previous.push("keel-provisioning-api-release");
      expect(registered.dependsOn, step).to.have.members(previous);
      expect(registered.options.deleteBeforeReplace, step).to.equal(true);
    }
    const provisioning = one(staging, "keel:provisioning:Provisioning", "keel-provisioning");
    expect(provisioning.dependsOn).to.have.members([
      "keel-dns-a",
      "keel-dns-aaaa",
      "keel-server-firewall",
      "keel-server-data-attachment",
      "keel-server-ip-assignment",
    ]);
  });

  it("when the first step connects, then it retries until SSH answers", () => {
    const connection = plain(command(staging, "wait").inputs.connection) as Record<string, unknown>;
    expect(connection.dialErrorLimit).to.equal(-1);
    expect(connection.host).to.equal(MOCK_RESERVED_IP);
    expect(
      isSecretInput(connection.privateKey) ||
        isSecretInput(command(staging, "wait").inputs.connection),
    ).to.equal(true);
  });

  it("when the api step runs, then the release archive is copied first, named by its hash", () => {
    const copy = one(staging, COPY, "keel-provisioning-api-release");
    expect(copy.inputs.remotePath).to.match(
      /^\/var\/lib\/keel\/uploads\/api-[0-9a-f]{16}\.tar\.gz$/,
    );
    expect(command(staging, "api").inputs.create).to.include(
      `--archive ${String(copy.inputs.remotePath)}`,
    );
  });

  it("when a step handles secrets, then its stdin and trigger are secret and its output hidden", () => {
    for (const step of ["postgres", "redis", "api", "monitoring"]) {
      const registered = command(staging, step);
      expect(isSecretInput(registered.inputs.stdin), `${step} stdin`).to.equal(true);
      expect(registered.inputs.logging, step).to.equal("none");
      expect(registered.options.additionalSecretOutputs, step).to.include.members([
        "stdout",
        "stderr",
      ]);
      const [trigger] = plain(registered.inputs.triggers) as unknown[];
      expect(
        isSecretInput(registered.inputs.triggers) || isSecretInput(trigger),
        `${step} trigger`,
      ).to.equal(true);
    }
    for (const step of ["wait", "base", "nginx"]) {
      const registered = command(staging, step);
      expect(isSecretInput(registered.inputs.stdin), `${step} stdin`).to.equal(false);
      expect(registered.inputs.logging, step).to.equal("stdoutAndStderr");
      expect(registered.options.additionalSecretOutputs ?? [], step).not.to.include("stdout");
    }
  });

  it("when any command runs, then its command line holds no secret and is not itself secret", () => {
    const secrets = [
      ...["postgres", "redis", "jwt", "admin-api-key"].map((n) =>
        mockPassword(`keel-secrets-${n}`, "1"),
      ),
      mockPassword("keel-secrets-backup-cipher-pass", ""),
      MOCK_TOKEN_VALUE,
      createHash("sha256").update(MOCK_TOKEN_VALUE).digest("hex"),
    ];
    for (const registered of byType(staging, COMMAND)) {
      expect(isSecretInput(registered.inputs.create), registered.name).to.equal(false);
      for (const secret of secrets) expect(String(registered.inputs.create)).not.to.include(secret);
      expect(registered.inputs.environment, registered.name).to.equal(undefined);
    }
  });

  it("when generated, then every password is secret, long enough, and all but the backup passphrase rotate with secretsGeneration", () => {
    const passwords = byType(staging, "random:index/randomPassword:RandomPassword");
    expect(passwords.map((p) => p.name).sort()).to.deep.equal([
      "keel-secrets-admin-api-key",
      "keel-secrets-backup-cipher-pass",
      "keel-secrets-jwt",
      "keel-secrets-postgres",
      "keel-secrets-redis",
    ]);
    for (const password of passwords) {
      // The backups already written can only be read with the passphrase they were written with.
      expect(password.inputs.keepers).to.deep.equal(
        password.name === "keel-secrets-backup-cipher-pass" ? undefined : { generation: "1" },
      );
      expect(password.inputs.length).to.be.at.least(password.name === "keel-secrets-jwt" ? 48 : 32);
    }
  });

  describe("when keel:secretsGeneration is bumped", () => {
    let rotated: ProgramRun;
    before(async () => {
      rotated = await runProgram({ ...stagingConfig(), secretsGeneration: 2 });
    });

    it("then every password's keepers change, so each is replaced, but the backup passphrase's", () => {
      for (const password of byType(rotated, "random:index/randomPassword:RandomPassword")) {
        expect(password.inputs.keepers, password.name).to.deep.equal(
          password.name === "keel-secrets-backup-cipher-pass" ? undefined : { generation: "2" },
        );
      }
    });

    it("then exactly the steps holding those secrets get new triggers", () => {
      const changed = STEP_NAMES.filter(
        (step) => triggerOf(staging, step) !== triggerOf(rotated, step),
      );
      expect(changed).to.deep.equal(["postgres", "redis", "api", "monitoring"]);
    });
  });

  describe("rotating one secret (keel:secretGenerations)", () => {
    const PASSWORD = "random:index/randomPassword:RandomPassword";
    const TOKEN = "cloudflare:index/apiToken:ApiToken";
    /** What decides whether a secret is replaced: each password's keepers, each token's name. */
    const identities = (run: ProgramRun): Record<string, unknown> =>
      Object.fromEntries([
        ...byType(run, PASSWORD).map((p): [string, unknown] => [p.name, p.inputs.keepers]),
        ...byType(run, TOKEN).map((t): [string, unknown] => [t.name, plain(t.inputs.name)]),
      ]);
    const changedSteps = (run: ProgramRun): string[] =>
      STEP_NAMES.filter((step) => triggerOf(staging, step) !== triggerOf(run, step));

    it("when an existing stack sets none, then every secret's keepers and every token's name are what they were before, so nothing rotates", async () => {
      // The values a stack had before per-secret generations existed.
      const before = (generation: string) => ({
        "keel-secrets-postgres": { generation },
        "keel-secrets-redis": { generation },
        "keel-secrets-jwt": { generation },
        "keel-secrets-admin-api-key": { generation },
        "keel-secrets-backup-cipher-pass": undefined,
        "keel-storage-token": "keel-staging-r2",
        "keel-backup-storage-token": "keel-staging-backups-r2",
      });
      expect(identities(staging)).to.deep.equal(before("1"));
      const third = await runProgram({ ...stagingConfig(), secretsGeneration: 3 });
      expect(identities(third)).to.deep.equal(before("3"));
      const allOnes = await runProgram({
        ...stagingConfig(),
        secretGenerations: {
          postgres: 1,
          redis: 1,
          jwt: 1,
          adminApiKey: 1,
          evidenceToken: 1,
          backupToken: 1,
        },
      });
      expect(identities(allOnes)).to.deep.equal(before("1"));
      expect(changedSteps(allOnes)).to.deep.equal([]);
    });

    const cases = [
      { field: "postgres", resource: "keel-secrets-postgres", steps: ["postgres", "api"] },
      { field: "redis", resource: "keel-secrets-redis", steps: ["redis", "api", "monitoring"] },
      { field: "jwt", resource: "keel-secrets-jwt", steps: ["api"] },
      { field: "adminApiKey", resource: "keel-secrets-admin-api-key", steps: ["api"] },
      { field: "evidenceToken", resource: "keel-storage-token", steps: ["api"] },
      { field: "backupToken", resource: "keel-backup-storage-token", steps: ["backups"] },
    ] as const;
    for (const { field, resource, steps } of cases) {
      it(`when only ${field} is bumped, then only ${resource} is replaced and only ${steps.join(" and ")} re-run`, async () => {
        const run = await runProgram({ ...stagingConfig(), secretGenerations: { [field]: 2 } });
        const changed = Object.entries(identities(run))
          .filter(
            ([name, identity]) =>
              JSON.stringify(identity) !== JSON.stringify(identities(staging)[name]),
          )
          .map(([name]) => name);
        expect(changed).to.deep.equal([resource]);
        expect(changedSteps(run)).to.deep.equal(steps);
      });
    }

    it("when a token is rotated, then a new token replaces it, created before the old one is deleted", async () => {
      const run = await runProgram({
        ...stagingConfig(),
        secretGenerations: { evidenceToken: 2, backupToken: 5 },
      });
      expect(plain(one(run, TOKEN, "keel-storage-token").inputs.name)).to.equal(
        "keel-staging-r2-gen2",
      );
      expect(plain(one(run, TOKEN, "keel-backup-storage-token").inputs.name)).to.equal(
        "keel-staging-backups-r2-gen5",
      );
      for (const token of byType(run, TOKEN)) {
        expect(token.options.replaceOnChanges, token.name).to.deep.equal(["name"]);
        expect(token.options.deleteBeforeReplace, token.name).not.to.equal(true);
      }
      // The new token's credentials are what the steps send.
      const secretKey = (r: ProgramRun) =>
        decodePayload(String(plain(command(r, "api").inputs.stdin))).find((f) =>
          f.path.endsWith("/etc/keel/api.env"),
        )?.content;
      expect(secretKey(run)).to.include(
        `S3_SECRET_ACCESS_KEY=${createHash("sha256").update(mockTokenValue("keel-staging-r2-gen2")).digest("hex")}`,
      );
      expect(secretKey(staging)).to.include(
        `S3_SECRET_ACCESS_KEY=${createHash("sha256").update(MOCK_TOKEN_VALUE).digest("hex")}`,
      );
    });
  });

  describe("when one rate limit changes", () => {
    it("then only the nginx step's trigger changes", async () => {
      const changedRun = await runProgram({ ...stagingConfig(), rateLimits: { edgeApiBurst: 40 } });
      const changed = STEP_NAMES.filter(
        (step) => triggerOf(staging, step) !== triggerOf(changedRun, step),
      );
      expect(changed).to.deep.equal(["nginx"]);
    });
  });

  describe("when keel:apiRelease names a kept release", () => {
    it("then nothing is uploaded, only the api step's trigger changes, and it deploys that release", async () => {
      const pinned = await runProgram({ ...stagingConfig(), apiRelease: "00c0ffee00c0ffee" });
      expect(byType(pinned, COPY)).to.deep.equal([]);
      const changed = STEP_NAMES.filter(
        (step) => triggerOf(staging, step) !== triggerOf(pinned, step),
      );
      expect(changed).to.deep.equal(["api"]);
      expect(command(pinned, "api").dependsOn).to.deep.equal(["keel-provisioning-nginx"]);
      expect(command(pinned, "api").inputs.create).to.include(
        "--release 00c0ffee00c0ffee --archive /var/lib/keel/uploads/api-00c0ffee00c0ffee.tar.gz",
      );
    });
  });

  describe("with keel:existingHost", () => {
    let existing: ProgramRun;
    before(async () => {
      existing = await runProgram({ ...stagingConfig(), existingHost: "49.13.87.210" });
    });

    it("then no droplet, firewall, volume, reserved IP or droplet alert is created", () => {
      const types = new Set(existing.resources.map((r) => r.type));
      for (const type of [
        DROPLET,
        FIREWALL,
        "digitalocean:index/volume:Volume",
        "digitalocean:index/reservedIp:ReservedIp",
        "digitalocean:index/sshKey:SshKey",
        "digitalocean:index/monitorAlert:MonitorAlert",
      ]) {
        expect(types.has(type), type).to.equal(false);
      }
    });

    it("then DNS points at the host, and provisioning connects to it with the data on its disk", () => {
      const records = byType(existing, DNS_RECORD).map((r) => r.inputs);
      expect(records).to.deep.equal([records[0]]);
      expect(records[0]).to.include({ type: "A", content: "49.13.87.210" });
      const connection = plain(command(existing, "base").inputs.connection) as Record<
        string,
        unknown
      >;
      expect(plain(connection.host)).to.equal("49.13.87.210");
      expect(command(existing, "base").inputs.create).to.match(/--data-device '' /);
      expect(existing.outputs.serverIp).to.equal("49.13.87.210");
    });
  });

  describe("with the reach check before the first step", () => {
    const reach = (run: ProgramRun) => one(run, "command:local:Command", "keel-provisioning-reach");
    const reachRequest = (run: ProgramRun) =>
      JSON.parse(plain(reach(run).inputs.stdin) as string) as Record<string, unknown>;
    const waitConnection = (run: ProgramRun) =>
      plain(command(run, "wait").inputs.connection) as Record<string, unknown>;
    let existing: ProgramRun;
    before(async () => {
      existing = await runProgram({ ...stagingConfig(), existingHost: "49.13.87.210" });
    });

    it("when a droplet is created, then SSH to its reserved IP is checked for up to 600 s before the wait step", () => {
      const { inputs } = reach(staging);
      expect(inputs.create).to.equal(REACH_COMMAND);
      expect(reachRequest(staging)).to.deep.equal({
        host: MOCK_RESERVED_IP,
        port: 22,
        timeoutSeconds: 600,
        sshAllowCidrs: ["85.10.197.7/32", "2a02:8108:1d40::/48"],
        existingHost: false,
      });
      expect(inputs.create).not.to.include(MOCK_RESERVED_IP);
      expect((plain(inputs.triggers) as unknown[]).map(plain)).to.deep.equal([
        "keel-server-droplet-id",
        MOCK_RESERVED_IP,
      ]);
      expect(command(staging, "wait").dependsOn).to.deep.equal(["keel-provisioning-reach"]);
    });

    it("when a droplet is created, then the wait step still dials until its SSH comes up", () => {
      expect(waitConnection(staging).dialErrorLimit).to.equal(-1);
    });

    it("when the host exists, then SSH to it is checked for up to 120 s and the wait step gives up after about two minutes of dials", () => {
      expect(reachRequest(existing)).to.deep.include({
        host: "49.13.87.210",
        timeoutSeconds: 120,
        existingHost: true,
      });
      expect((plain(reach(existing).inputs.triggers) as unknown[]).map(plain)).to.deep.equal([
        "49.13.87.210",
        "49.13.87.210",
      ]);
      expect(command(existing, "wait").dependsOn).to.deep.equal(["keel-provisioning-reach"]);
      const connection = waitConnection(existing);
      expect(connection.dialErrorLimit).to.be.a("number").within(1, 5);
      expect(
        (connection.dialErrorLimit as number) * (connection.perDialTimeout as number),
      ).to.be.within(90, 150);
    });
  });

  describe("the backups", () => {
    const TOKEN = "cloudflare:index/apiToken:ApiToken";
    const LOCK = "cloudflare:index/r2BucketLock:R2BucketLock";
    const scope = (run: ProgramRun, token: string) =>
      Object.keys(
        JSON.parse(
          (one(run, TOKEN, token).inputs.policies as Array<{ resources: string }>)[0]?.resources ??
            "{}",
        ) as object,
      );
    const stepFile = (run: ProgramRun, step: string, path: string) =>
      decodePayload(plain(command(run, step).inputs.stdin) as string).find(
        (f) => f.path === `files${path}`,
      )?.content ?? "";

    it("when deployed, then backups go to a bucket of their own with a token scoped to it alone", () => {
      const bucket = one(
        staging,
        "cloudflare:index/r2Bucket:R2Bucket",
        "keel-backup-storage-bucket",
      );
      expect(bucket.inputs.name).to.equal("keel-staging-backups");
      expect(one(staging, TOKEN, "keel-backup-storage-token").inputs.name).to.equal(
        "keel-staging-backups-r2",
      );
      const account = "fedcba9876543210fedcba9876543210";
      expect(scope(staging, "keel-backup-storage-token")).to.deep.equal([
        bucketResource(account, "keel-staging-backups"),
      ]);
      expect(scope(staging, "keel-storage-token")).to.deep.equal([
        bucketResource(account, "keel-staging-evidence"),
      ]);
    });

    it("when the steps get their secrets, then only the backups step holds the backup token and the API's env does not", () => {
      const pgbackrest = stepFile(staging, "backups", "/etc/pgbackrest/pgbackrest.conf");
      expect(pgbackrest).to.include("repo1-s3-key=keel-backup-storage-token-id\n");
      expect(pgbackrest).to.include("repo1-s3-bucket=keel-staging-backups\n");
      expect(pgbackrest).to.include(
        `repo1-cipher-pass=${mockPassword("keel-secrets-backup-cipher-pass", "")}\n`,
      );
      expect(isSecretInput(command(staging, "backups").inputs.stdin)).to.equal(true);
      const env = stepFile(staging, "api", "/etc/keel/api.env");
      expect(env).to.include("S3_ACCESS_KEY_ID=keel-storage-token-id\n");
      expect(env).not.to.include("keel-backup-storage-token-id");
      expect(env).not.to.include("keel-staging-backups");
    });

    it("when locked (7 days by default), then WAL segments and backup sets cannot be deleted or overwritten for that long", () => {
      const [lock, ...others] = byType(staging, LOCK);
      expect(others).to.have.length(0);
      expect(lock?.inputs.bucketName).to.equal("keel-staging-backups");
      const rules = lock?.inputs.rules as Array<{
        prefix: string;
        enabled: boolean;
        condition: { type: string; maxAgeSeconds: number };
      }>;
      expect(rules.map((r) => r.prefix)).to.deep.equal([
        "keel/archive/keel/17-",
        "keel/backup/keel/2",
      ]);
      for (const rule of rules) {
        expect(rule).to.deep.include({
          enabled: true,
          condition: { type: "Age", maxAgeSeconds: 7 * 86400 },
        });
      }
    });

    it("when keel:backupLockDays is 0, then the bucket has no lock", async () => {
      const run = await runProgram({ ...stagingConfig(), backupLockDays: 0 });
      expect(byType(run, LOCK)).to.have.length(0);
    });

    it("when keel:backupRetentionFull and keel:restore are set, then the backups and restore steps get them", async () => {
      const run = await runProgram({
        ...stagingConfig(),
        backupRetentionFull: 8,
        restore: "2026-12-02T15:04:05+01:00",
      });
      expect(stepFile(run, "backups", "/etc/pgbackrest/pgbackrest.conf")).to.include(
        "repo1-retention-full=8\n",
      );
      expect(command(run, "restore").inputs.create).to.match(/ --target 2026-12-02T14:04:05Z$/);
      expect(command(staging, "restore").inputs.create).to.match(/ --target none$/);
      const changed = STEP_NAMES.filter(
        (step) => triggerOf(staging, step) !== triggerOf(run, step),
      );
      expect(changed).to.deep.equal(["backups", "restore"]);
    });
  });

  describe("bringing back a destroyed stack's kept volume and buckets", () => {
    const VOLUME = "digitalocean:index/volume:Volume";
    const BUCKET = "cloudflare:index/r2Bucket:R2Bucket";
    const imports = (run: ProgramRun) => [
      one(run, VOLUME, "keel-server-data").options.import,
      one(run, BUCKET, "keel-storage-bucket").options.import,
      one(run, BUCKET, "keel-backup-storage-bucket").options.import,
    ];

    it("when nothing is to be adopted (the default), then every resource is created", () => {
      expect(imports(staging)).to.deep.equal([undefined, undefined, undefined]);
    });

    it("when keel:adoptVolumeId and keel:adoptBuckets are set, then the stack imports the kept volume and both buckets", async () => {
      const volumeId = "506f78a4-e098-11e5-ad9f-000f53306ae1";
      const run = await runProgram({
        ...stagingConfig(),
        adoptVolumeId: volumeId,
        adoptBuckets: true,
      });
      const account = "fedcba9876543210fedcba9876543210";
      expect(imports(run)).to.deep.equal([
        volumeId,
        `${account}/keel-staging-evidence/default`,
        `${account}/keel-staging-backups/default`,
      ]);
      // Adopted, they stay what they were: the same names, kept again on destroy.
      expect(one(run, VOLUME, "keel-server-data").inputs.name).to.equal("keel-staging-data");
      expect(one(run, VOLUME, "keel-server-data").options.retainOnDelete).to.equal(true);
    });
  });

  describe("with keel:backupPassphrase (the kept repository's)", () => {
    it("then the backups step encrypts with it and no passphrase is generated", async () => {
      const run = await runProgram({
        ...stagingConfig(),
        backupPassphrase: "KeptRepositoryPassphrase0123456789",
      });
      const conf = decodePayload(plain(command(run, "backups").inputs.stdin) as string).find(
        (f) => f.path === "files/etc/pgbackrest/pgbackrest.conf",
      )?.content;
      expect(conf).to.include("repo1-cipher-pass=KeptRepositoryPassphrase0123456789\n");
      expect(
        byType(run, "random:index/randomPassword:RandomPassword").map((p) => p.name),
      ).not.to.include("keel-secrets-backup-cipher-pass");
      expect(run.secretOutputs).to.include("backupPassphrase");
    });
  });

  describe("alert mail (keel:smtp, keel:smtpPassword)", () => {
    const PASSWORD = "SmtpMockPassword0123456789abcdef";
    let run: ProgramRun;
    before(async () => {
      run = await runProgram({
        ...stagingConfig(),
        smtp: { host: "smtp.keel-ci.dev", username: "alerts", from: "alerts@keel-ci.dev" },
        smtpPassword: PASSWORD,
      });
    });

    it("when keel:smtpPassword is set, then it reaches the provisioning only as a secret", () => {
      expect(run.provisioningSecrets.smtpPassword).to.deep.equal({ value: PASSWORD, secret: true });
      // The steps that declare it get it on a secret stdin, with their output hidden.
      const holders: string[] = [];
      for (const step of STEPS.filter((s) => s.secrets.includes("smtpPassword"))) {
        const registered = command(run, step.name);
        expect(isSecretInput(registered.inputs.stdin), `${step.name} stdin`).to.equal(true);
        expect(registered.inputs.logging, step.name).to.equal("none");
        holders.push(
          ...decodePayload(plain(registered.inputs.stdin) as string)
            .filter((f) => f.content.includes(PASSWORD))
            .map((f) => `${step.name}:${f.path}`),
        );
      }
      expect(holders, "files holding the password").not.to.deep.equal([]);
      // Nothing else holds it in plain: no input of any resource, no stack output.
      expect(run.resources.length).to.be.greaterThan(10);
      for (const registered of run.resources) {
        expect(plainText(registered.inputs), registered.name).not.to.include(PASSWORD);
      }
      expect(JSON.stringify(run.outputs)).not.to.include(PASSWORD);
      expect(run.secretOutputs).to.deep.equal(["adminApiKey", "backupPassphrase"]);
    });

    it("when keel:smtpPassword is not set, then the provisioning gets an empty secret", () => {
      expect(staging.provisioningSecrets.smtpPassword).to.deep.equal({ value: "", secret: true });
    });
  });

  describe("with retainData", () => {
    /** retainOnDelete of the volume and of the two buckets. */
    const retained = (run: ProgramRun) =>
      [
        one(run, "digitalocean:index/volume:Volume", "keel-server-data"),
        one(run, "cloudflare:index/r2Bucket:R2Bucket", "keel-storage-bucket"),
        one(run, "cloudflare:index/r2Bucket:R2Bucket", "keel-backup-storage-bucket"),
      ].map((r) => r.options.retainOnDelete);
    const emptier = (run: ProgramRun) => one(run, "command:local:Command", "keel-storage-emptier");
    const emptierRequest = (run: ProgramRun) =>
      JSON.parse(plain(emptier(run).inputs.stdin) as string) as Record<string, unknown>;

    it("when true (the default), then the volume and buckets are kept, objects included", () => {
      expect(retained(staging)).to.deep.equal([true, true, true]);
      expect(emptierRequest(staging).retainData).to.equal(true);
    });

    it("when false, then nothing is kept and destroy empties the bucket before deleting it", async () => {
      const run = await runProgram({ ...stagingConfig(), retainData: false, backupLockDays: 0 });
      expect(retained(run)).to.deep.equal([false, false, false]);
      expect(emptierRequest(run)).to.deep.equal({
        endpoint: "https://fedcba9876543210fedcba9876543210.r2.cloudflarestorage.com",
        region: "auto",
        bucket: "keel-staging-evidence",
        accessKeyId: "keel-storage-token-id",
        secretAccessKey: createHash("sha256").update(MOCK_TOKEN_VALUE).digest("hex"),
        retainData: false,
      });
    });

    it("when the emptier is registered, then it runs only on delete and its stdin is secret", () => {
      const { inputs } = emptier(staging);
      expect(inputs.delete).to.equal(EMPTY_BUCKET_COMMAND);
      expect(inputs.create).to.equal(undefined);
      expect(inputs.update).to.equal(undefined);
      // Only a change of triggers would replace it, and so run its delete.
      expect(inputs.triggers).to.equal(undefined);
      expect(isSecretInput(inputs.stdin)).to.equal(true);
    });
  });

  describe("with bad configuration", () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      [
        "SSH open to the world",
        { sshAllowCidrs: ["0.0.0.0/0"] },
        /keel:sshAllowCidrs contains 0\.0\.0\.0\/0: SSH would be open to the world; list your own addresses, or set keel:allowSshFromAnywhere true/,
      ],
      ["a wildcard origin", { frontendOrigins: ["*"] }, /keel:frontendOrigins contains \*/],
      [
        "a malformed CIDR",
        { sshAllowCidrs: ["10.0.0.1/8"] },
        /keel:sshAllowCidrs contains "10\.0\.0\.1\/8"/,
      ],
      [
        "a non-https origin",
        { frontendOrigins: ["http://app.keel-ci.dev"] },
        /origins must use https/,
      ],
      [
        "an unknown region",
        { region: "mars1" },
        /keel:region "mars1" is not a known DigitalOcean region/,
      ],
      [
        "an unknown size",
        { dropletSize: "huge" },
        /keel:dropletSize "huge" is not a supported droplet size/,
      ],
      [
        "a placeholder",
        { cloudflareZoneId: "CHANGE_ME" },
        /keel:cloudflareZoneId is still the placeholder "CHANGE_ME"/,
      ],
      ["a typo in a key", { domian: "keel-ci.dev" }, /keel:domian is not a Keel setting/],
      [
        "a backup lock as long as the retention",
        { backupRetentionFull: 2, backupLockDays: 14 },
        /keel:backupLockDays \(14\) must be shorter than the retention/,
      ],
      [
        "a backup lock with retainData false",
        { retainData: false },
        /keel:backupLockDays \(7\) locks backups against deletion/,
      ],
      [
        "a volume id that is not one",
        { adoptVolumeId: "keel-staging-data" },
        /keel:adoptVolumeId must be a DigitalOcean volume id/,
      ],
      [
        "a volume to adopt for an existing host",
        { adoptVolumeId: "506f78a4-e098-11e5-ad9f-000f53306ae1", existingHost: "49.13.87.210" },
        /keel:adoptVolumeId has no meaning with keel:existingHost/,
      ],
      [
        "an SMTP password without keel:smtp",
        { smtpPassword: "SmtpMockPassword0123456789abcdef" },
        /keel:smtpPassword is set, but keel:smtp is not/,
      ],
      [
        "an SMTP username without keel:smtpPassword",
        { smtp: { host: "smtp.keel-ci.dev", username: "alerts", from: "alerts@keel-ci.dev" } },
        /keel:smtpPassword is required with keel:smtp field username \("alerts"\): set it with `pulumi config set --secret keel:smtpPassword …`/,
      ],
      [
        "a restore time without its offset",
        { restore: "2026-12-02 15:04" },
        /keel:restore must be latest, undo, or an RFC 3339 time/,
      ],
    ];
    for (const [what, overrides, message] of cases) {
      it(`when the config has ${what}, then the program fails with that message and creates nothing`, async () => {
        const failure = await failureOf({ ...stagingConfig(), ...overrides });
        expect(failure.message).to.match(message);
        expect(failure.resources.map((r) => r.type)).to.deep.equal(["pulumi:pulumi:Stack"]);
      });
    }

    it("when the SSH private key is missing, then the program says how to set it", async () => {
      const config = stagingConfig();
      delete config.sshPrivateKey;
      const failure = await failureOf(config);
      expect(failure.message).to.include("pulumi config set --secret keel:sshPrivateKey");
    });
  });
});
