// Provisions a stand-in the way `pulumi up` provisions a droplet: the same step list, the same
// buildStep output (command, stdin, upload), in the same order, each step run over SSH with its
// payload on stdin and its exit status checked. Only the transport differs: OpenSSH here,
// @pulumi/command's SSH client there. `npm run local` and the e2e tier both use it.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseSettings, type RawConfig } from "../infra/config-rules";
import { SECRET_LENGTHS } from "../infra/secrets";
import { serverValues } from "../provisioning/server-values";
import { buildStep, STEP_NAMES, type StepName } from "../provisioning/steps";
import type { ReleaseValues, SecretValues, ServerValues } from "../provisioning/values";
import type { S3Endpoint, StandinAccess } from "./standin";

export interface StepRun {
  readonly name: StepName;
  readonly seconds: number;
  /** Changes the step reported; 0 means "no changes". */
  readonly changes: number;
  readonly output: string;
}

/** Keys of a local stack that the stand-in decides: a stack file's values for them are replaced. */
export const STANDIN_KEYS = ["domain", "apiSubdomain", "acmeServer", "sshAllowCidrs"] as const;

/**
 * The server values of a stack on the stand-in, derived through the same config validation and
 * the same mapping as `pulumi up`: `config` is the stack's own keys (a Pulumi.local.yaml, or
 * overrides in a test); the domain, the ACME server and the SSH client are the stand-in's, and
 * the storage is its S3 server instead of R2.
 */
export function standinValues(
  standin: StandinAccess,
  release: ReleaseValues,
  config: RawConfig = {},
): ServerValues {
  const settings = parseSettings(
    {
      existingHost: "127.0.0.1",
      frontendOrigins: ["https://app.standin.test"],
      acmeEmail: "ops@standin.test",
      dropletSize: "s-1vcpu-2gb",
      apiInstances: 2,
      ...config,
      domain: standin.domain.replace(/^api\./, ""),
      apiSubdomain: "api",
      acmeServer: standin.acmeDirectory,
      sshAllowCidrs: [`${standin.clientAddress}/32`],
    },
    { local: true },
  );
  const { s3, backupS3 } = standin;
  const storage = (e: S3Endpoint) => ({ endpoint: e.endpoint, region: e.region, bucket: e.bucket });
  return serverValues(
    settings,
    { dataDevice: "", storage: storage(s3), backupStorage: storage(backupS3) },
    release,
  );
}

/** Fresh secrets shaped like the Pulumi program's (letters and digits, the same lengths). */
export function standinSecrets(s3: S3Endpoint, backupS3: S3Endpoint): SecretValues {
  const generate = (length: number): string =>
    randomBytes(length)
      .toString("base64")
      .replace(/[^A-Za-z0-9]/g, "")
      .slice(0, length)
      .padEnd(length, "7");
  return {
    postgresPassword: generate(SECRET_LENGTHS.postgresPassword),
    redisPassword: generate(SECRET_LENGTHS.redisPassword),
    jwtSecret: generate(SECRET_LENGTHS.jwtSecret),
    adminApiKey: generate(SECRET_LENGTHS.adminApiKey),
    s3AccessKeyId: s3.accessKeyId,
    s3SecretAccessKey: s3.secretAccessKey,
    backupAccessKeyId: backupS3.accessKeyId,
    backupSecretAccessKey: backupS3.secretAccessKey,
    backupCipherPass: generate(SECRET_LENGTHS.backupCipherPass),
    // The stand-in sends no alert mail: no keel:smtp, no password.
    smtpPassword: "",
  };
}

const LAST_LINE = /^keel (\w+): (no changes|(\d+) change\(s\))$/;

/** Runs one step; throws with the step's output when it fails. */
export async function runStep(
  standin: StandinAccess,
  name: StepName,
  values: ServerValues,
  secrets: SecretValues,
): Promise<StepRun> {
  const plan = buildStep(name, values, secrets);
  const started = performance.now();
  if (plan.upload !== undefined) {
    await standin.copyFile(plan.upload.localPath, plan.upload.remotePath);
  }
  const result = await standin.ssh(plan.command, { stdin: plan.stdin, timeoutMs: 20 * 60_000 });
  const seconds = (performance.now() - started) / 1000;
  const output = `${result.stdout}${result.stderr}`;
  if (result.code !== 0) {
    throw new Error(`step ${name} failed with exit status ${result.code}:\n${output.slice(-4000)}`);
  }
  const last = LAST_LINE.exec(result.stdout.trimEnd().split("\n").at(-1) ?? "");
  if (last === null || last[1] !== name) {
    throw new Error(`step ${name} did not end with its summary line:\n${output.slice(-2000)}`);
  }
  return { name, seconds, changes: last[3] === undefined ? 0 : Number(last[3]), output };
}

/** Runs `names` (default: every step) in the designed order. */
export async function provision(
  standin: StandinAccess,
  values: ServerValues,
  secrets: SecretValues,
  names: readonly StepName[] = STEP_NAMES,
  log: (line: string) => void = () => undefined,
): Promise<StepRun[]> {
  const runs: StepRun[] = [];
  for (const name of STEP_NAMES.filter((n) => names.includes(n))) {
    const run = await runStep(standin, name, values, secrets);
    log(
      `step ${name}: ${run.seconds.toFixed(1)}s, ${run.changes === 0 ? "no changes" : `${run.changes} change(s)`}`,
    );
    runs.push(run);
  }
  return runs;
}

/** The trigger each step was last applied with, as Pulumi's state keeps it. */
export type AppliedTriggers = Partial<Record<StepName, string>>;

/**
 * Applies what changed, as `pulumi up` does: runs, in order, exactly the steps whose trigger
 * differs from the one they were last applied with, and records each trigger once its step
 * succeeded (`onApplied`), so a failure leaves the earlier steps recorded.
 */
export async function applyChanges(
  standin: StandinAccess,
  values: ServerValues,
  secrets: SecretValues,
  applied: AppliedTriggers,
  onApplied: (name: StepName, trigger: string) => void,
  log: (line: string) => void = () => undefined,
): Promise<StepRun[]> {
  const runs: StepRun[] = [];
  for (const name of STEP_NAMES) {
    const { trigger } = buildStep(name, values, secrets);
    if (applied[name] === trigger) {
      log(`step ${name}: unchanged`);
      continue;
    }
    const [run] = await provision(standin, values, secrets, [name], log);
    if (run !== undefined) runs.push(run);
    onApplied(name, trigger);
  }
  return runs;
}
