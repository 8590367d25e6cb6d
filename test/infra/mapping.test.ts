// One mapping from stack config to what the server receives: for the same configuration, what
// the Pulumi program hands each provisioning step (under mocks) is byte for byte what buildStep
// makes from the offline mapping that `npm run render`, `npm run local` and the e2e tier use.
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { expect } from "chai";
import { parseSettings } from "../../infra/config-rules";
import { plannedCloud, serverValues } from "../../provisioning/server-values";
import { buildStep, STEP_NAMES } from "../../provisioning/steps";
import type { SecretValues } from "../../provisioning/values";
import {
  MOCK_TOKEN_VALUE,
  mockPassword,
  one,
  plain,
  runProgram,
  stagingConfig,
  type ProgramRun,
} from "./program";

const ROOT = resolve(__dirname, "..", "..");

/** The secrets the mocks hand the program: generated passwords and the R2 token's credentials. */
const MOCK_SECRETS: SecretValues = {
  postgresPassword: mockPassword("keel-secrets-postgres", "1"),
  redisPassword: mockPassword("keel-secrets-redis", "1"),
  jwtSecret: mockPassword("keel-secrets-jwt", "1"),
  adminApiKey: mockPassword("keel-secrets-admin-api-key", "1"),
  s3AccessKeyId: "keel-storage-token-id",
  s3SecretAccessKey: createHash("sha256").update(MOCK_TOKEN_VALUE).digest("hex"),
  backupAccessKeyId: "keel-backup-storage-token-id",
  backupSecretAccessKey: createHash("sha256").update(MOCK_TOKEN_VALUE).digest("hex"),
  // It never rotates: no keepers, so the mocks hand it out for generation "".
  backupCipherPass: mockPassword("keel-secrets-backup-cipher-pass", ""),
  // keel:smtpPassword is not set: the program hands the steps "" (as a secret).
  smtpPassword: "",
};

/** The settings the program validated: every key but the secret one. */
function settingsOf(config: Record<string, unknown>) {
  return parseSettings(
    Object.fromEntries(Object.entries(config).filter(([key]) => key !== "sshPrivateKey")),
  );
}

/** The release the program built, as its upload names it. */
function releaseOf(run: ProgramRun) {
  const copy = one(run, "command:remote:CopyToRemote", "keel-provisioning-api-release");
  const id = /api-([0-9a-f]{16})\.tar\.gz$/.exec(String(copy.inputs.remotePath))?.[1] ?? "";
  expect(id).to.match(/^[0-9a-f]{16}$/);
  return { id, archive: join(ROOT, "dist", `api-${id}.tar.gz`) };
}

function expectSamePlans(run: ProgramRun, config: Record<string, unknown>, stack: string): void {
  const values = serverValues(
    settingsOf(config),
    plannedCloud(stack, settingsOf(config)),
    releaseOf(run),
  );
  for (const step of STEP_NAMES) {
    const plan = buildStep(step, values, MOCK_SECRETS);
    const command = one(run, "command:remote:Command", `keel-provisioning-${step}`);
    expect(command.inputs.create, `${step} command`).to.equal(plan.command);
    // Compared whole: a difference in any rendered file or input fails here.
    expect(plain(command.inputs.stdin) === plan.stdin, `${step} stdin`).to.equal(true);
    const [trigger] = plain(command.inputs.triggers) as unknown[];
    expect(plain(trigger), `${step} trigger`).to.equal(plan.trigger);
  }
}

describe("the one mapping from stack config to server values", () => {
  it("when a droplet stack is deployed under mocks, then every step gets exactly what the offline mapping builds", async () => {
    const config = { ...stagingConfig(), apiInstances: 3, rateLimits: { edgeApiBurst: 40 } };
    expectSamePlans(await runProgram(config), config, "staging");
  });

  it("when an existing host is provisioned under mocks, then every step gets exactly what the offline mapping builds", async () => {
    const config = { ...stagingConfig(), existingHost: "49.13.87.210", dropletSize: "s-2vcpu-4gb" };
    expectSamePlans(await runProgram(config, "prod"), config, "prod");
  });

  it("when the offline mapping is given another stack name, then the plans differ, so the comparison can fail", async () => {
    const config = stagingConfig();
    const run = await runProgram(config);
    expect(() => expectSamePlans(run, config, "other")).to.throw(/base command/);
  });
});
