// The step list as pure functions: order, triggers that change exactly when a step's inputs
// change, secrets confined to the steps that declare them, and commands free of secrets.
import { expect } from "chai";
import { DEFAULT_RATE_LIMITS } from "../../infra/config-rules";
import { decodePayload } from "../../provisioning/payload";
import { buildStep, STEP_NAMES, STEPS, type StepName } from "../../provisioning/steps";
import type { SecretName, SecretValues, ServerValues } from "../../provisioning/values";
import { secretValues, serverValues } from "./fixtures";

function triggers(values: ServerValues, secrets: SecretValues): Record<StepName, string> {
  return Object.fromEntries(
    STEP_NAMES.map((name) => [name, buildStep(name, values, secrets).trigger]),
  ) as Record<StepName, string>;
}

function changedSteps(
  values: Partial<ServerValues>,
  secrets: Partial<SecretValues> = {},
): StepName[] {
  const before = triggers(serverValues(), secretValues());
  const after = triggers(serverValues(values), secretValues(secrets));
  return STEP_NAMES.filter((name) => before[name] !== after[name]);
}

function payloadText(name: StepName, secrets = secretValues()): string {
  return decodePayload(buildStep(name, serverValues(), secrets).stdin)
    .map((f) => `${f.path}\n${f.content}`)
    .join("\n");
}

describe("provisioning steps", () => {
  it("when listed, then they run in the designed order", () => {
    expect(STEPS.map((s) => s.name)).to.deep.equal([
      "wait",
      "base",
      "postgres",
      "redis",
      "nginx",
      "api",
      "backups",
      "monitoring",
      "restore",
    ]);
  });

  it("when built twice from the same values, then everything is identical", () => {
    for (const name of STEP_NAMES) {
      expect(buildStep(name, serverValues(), secretValues())).to.deep.equal(
        buildStep(name, serverValues(), secretValues()),
      );
    }
  });

  const cases: Array<[string, Partial<ServerValues>, Partial<SecretValues>, StepName[]]> = [
    [
      "an edge auth limit",
      { rateLimits: { ...DEFAULT_RATE_LIMITS, edgeAuthPerMinute: 5 } },
      {},
      ["nginx"],
    ],
    [
      "the API's own limit",
      { rateLimits: { ...DEFAULT_RATE_LIMITS, apiPerMinute: 100 } },
      {},
      ["api"],
    ],
    ["the instance count", { apiInstances: 3 }, {}, ["nginx", "api", "monitoring"]],
    ["the SSH allow-list", { sshAllowCidrs: ["198.51.100.8/32"] }, {}, ["base"]],
    ["the memory", { memoryMb: 8192 }, {}, ["base", "postgres", "redis", "api", "monitoring"]],
    ["the ACME server", { acmeServer: "https://localhost:14000/dir" }, {}, ["nginx"]],
    ["the API release", { release: { id: "fedcba9876543210", archive: "/x.tar.gz" } }, {}, ["api"]],
    ["the data volume", { dataDevice: "" }, {}, ["base"]],
    ["the CORS origins", { frontendOrigins: ["https://new.example.com"] }, {}, ["api"]],
    [
      "the Postgres password",
      {},
      { postgresPassword: "RotatedPg000000000000000000000000000000001" },
      ["postgres", "api"],
    ],
    [
      "the Redis password",
      {},
      { redisPassword: "RotatedRedis000000000000000000000000000002" },
      ["redis", "api", "monitoring"],
    ],
    [
      "the JWT secret",
      {},
      { jwtSecret: "RotatedJwt0000000000000000000000000000000000000000000000000003" },
      ["api"],
    ],
    [
      "the admin API key",
      {},
      { adminApiKey: "RotatedAdmin00000000000000000000000000000004" },
      ["api"],
    ],
    [
      "the backup passphrase",
      {},
      { backupCipherPass: "RotatedPass0000000000000000000000000000000000000000000000000009" },
      ["backups"],
    ],
    [
      "the backup retention",
      { backup: { ...serverValues().backup, retentionFull: 8 } },
      {},
      ["backups"],
    ],
    ["the restore target", { restore: "latest" }, {}, ["backups", "restore"]],
    [
      "the SSH user",
      { sshUser: "deploy" },
      {},
      ["wait", "base", "postgres", "redis", "nginx", "api", "backups", "monitoring", "restore"],
    ],
    [
      "the alert mail's SMTP server",
      {
        alerts: {
          email: "ops@example.com",
          smtp: {
            host: "smtp.example.com",
            port: 587,
            username: "alerts",
            from: "keel@example.com",
            requireTls: true,
          },
        },
      },
      {},
      ["monitoring"],
    ],
    // Without an SMTP login the password goes nowhere: nothing re-runs.
    ["the SMTP password without keel:smtp", {}, { smtpPassword: "RotatedSmtp00000000000011" }, []],
  ];
  for (const [what, values, secrets, expected] of cases) {
    it(`when ${what} changes, then exactly the triggers of ${expected.join(", ")} change`, () => {
      expect(changedSteps(values, secrets)).to.deep.equal(expected);
    });
  }

  it("when any step is built, then its command holds no secret", () => {
    const secrets = Object.values(secretValues());
    for (const name of STEP_NAMES) {
      const { command } = buildStep(name, serverValues(), secretValues());
      for (const secret of secrets) expect(command).not.to.include(secret);
    }
  });

  it("when a step declares no secret, then its payload holds none", () => {
    const secrets = Object.values(secretValues());
    for (const step of STEPS.filter((s) => s.secrets.length === 0)) {
      const text = payloadText(step.name);
      for (const secret of secrets) expect(text, step.name).not.to.include(secret);
    }
  });

  it("when a step is built, then only the secrets it declares are in its payload", () => {
    const all = secretValues();
    for (const step of STEPS) {
      const text = payloadText(step.name);
      for (const [name, value] of Object.entries(all) as Array<[SecretName, string]>) {
        if (!step.secrets.includes(name))
          expect(text, `${step.name} ${name}`).not.to.include(value);
      }
    }
  });

  it("when the postgres and redis steps run, then their passwords travel only as hashes", () => {
    const { postgresPassword, redisPassword } = secretValues();
    expect(payloadText("postgres")).not.to.include(postgresPassword);
    expect(payloadText("postgres")).to.match(/SCRAM-SHA-256\$4096:/);
    expect(payloadText("redis")).not.to.include(redisPassword);
    expect(payloadText("api")).to.include(postgresPassword).and.include(redisPassword);
  });

  it("when a step misses a secret it declares, then building it fails", () => {
    expect(() => buildStep("api", serverValues(), { jwtSecret: "x" })).to.throw(
      /step api needs the secrets postgresPassword, redisPassword, adminApiKey/,
    );
    expect(() => buildStep("nginx", serverValues(), {})).not.to.throw();
  });

  it("when a step carries secret files, then they are mode 0600 in the payload", () => {
    for (const name of STEP_NAMES) {
      const plan = buildStep(name, serverValues(), secretValues());
      const modes = new Map(decodePayload(plan.stdin).map((f) => [f.path, f.mode]));
      for (const file of plan.files.filter((f) => f.secret === true)) {
        expect(modes.get(`files${file.path}`), file.path).to.equal("0600");
      }
    }
  });

  it("when the api step is built, then it uploads the release archive named by its id", () => {
    const plan = buildStep("api", serverValues(), secretValues());
    expect(plan.upload).to.deep.equal({
      localPath: "/nonexistent/api-0123456789abcdef.tar.gz",
      remotePath: "/var/lib/keel/uploads/api-0123456789abcdef.tar.gz",
    });
    expect(plan.command).to.match(
      / keel-api --release 0123456789abcdef --archive \/var\/lib\/keel\/uploads\/api-0123456789abcdef.tar.gz --instances 2 --jwt-keys \/etc\/keel\/jwt-keys --token-seconds 900 --watch-seconds 60 --max-error-rate 0.1 --max-latency-factor 3$/,
    );
    expect(buildStep("nginx", serverValues(), {}).upload).to.equal(undefined);
  });

  it("when the nginx step is built, then the domain and ACME directory are its parameters", () => {
    const { command } = buildStep(
      "nginx",
      serverValues({ acmeServer: "https://localhost:14000/dir" }),
      {},
    );
    expect(command).to.match(
      / keel-nginx --domain api\.example\.com --email ops@example\.com --acme-server https:\/\/localhost:14000\/dir --webroot \/var\/lib\/keel\/acme$/,
    );
  });
});
