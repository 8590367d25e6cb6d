// `npm run render -- --stack staging --out DIR`: writes every file the provisioning steps would
// install, at its target path under DIR, plus the step scripts and their commands, so an
// operator sees exactly what lands on the server. It reads Pulumi.<stack>.yaml itself (no
// Pulumi CLI, no network) and shows placeholders where secrets and cloud outputs would be.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../infra/config-rules";
import { buildStep, readScript, STEPS } from "../provisioning/steps";
import { plannedCloud, serverValues } from "../provisioning/server-values";
import type { ReleaseValues, SecretValues } from "../provisioning/values";
import { checkStackFile, readStackFile } from "./stack-file";

/** What `npm run render` shows where a secret would be. */
export const PLACEHOLDER_SECRETS: SecretValues = {
  postgresPassword: "RENDERED-PLACEHOLDER-postgres-password-not-a-secret",
  redisPassword: "RENDERED-PLACEHOLDER-redis-password-not-a-secret",
  jwtSecret: "RENDERED-PLACEHOLDER-jwt-secret-not-a-secret",
  adminApiKey: "RENDERED-PLACEHOLDER-admin-api-key-not-a-secret",
  s3AccessKeyId: "RENDERED-PLACEHOLDER-r2-access-key-id-not-a-secret",
  s3SecretAccessKey: "RENDERED-PLACEHOLDER-r2-secret-access-key-not-a-secret",
  backupAccessKeyId: "RENDERED-PLACEHOLDER-backup-access-key-id-not-a-secret",
  backupSecretAccessKey: "RENDERED-PLACEHOLDER-backup-secret-access-key-not-a-secret",
  backupCipherPass: "RENDERED-PLACEHOLDER-backup-passphrase-not-a-secret",
  smtpPassword: "RENDERED-PLACEHOLDER-smtp-password-not-a-secret",
};

/** Where `npm run render` shows the release: the archive is built by `pulumi up`. */
const PLACEHOLDER_RELEASE = {
  id: "0000000000000000",
  archive: "dist/api-0000000000000000.tar.gz",
};

/** The release `pulumi up` will deploy: a kept one (keel:apiRelease), or the build's. */
function plannedRelease(apiRelease: string): ReleaseValues {
  return apiRelease === "" ? PLACEHOLDER_RELEASE : { id: apiRelease, archive: "" };
}

/**
 * Renders a stack's files under outDir; returns the paths written, relative to outDir. Refuses
 * what `npm run check` refuses, except missing secrets and provider tokens, which it does not
 * need.
 */
export function renderStack(stack: string, stackFile: string, outDir: string): string[] {
  const { settings, problems } = checkStackFile(readStackFile(stackFile, stack));
  if (problems.length > 0) throw new ConfigError(problems);

  const values = serverValues(
    settings,
    plannedCloud(stack, settings),
    plannedRelease(settings.apiRelease),
  );
  const written: string[] = [];
  const write = (path: string, content: string): void => {
    const target = join(outDir, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    written.push(path.replace(/^\//, ""));
  };

  const commands: string[] = [];
  STEPS.forEach((step, index) => {
    const plan = buildStep(step.name, values, PLACEHOLDER_SECRETS);
    for (const file of plan.files) write(file.path, file.content);
    const order = String(index + 1).padStart(2, "0");
    write(`_keel/steps/${order}-${step.name}.sh`, readScript(step.name));
    commands.push(`# ${order} ${step.name}: ${step.description}\n${plan.command}\n`);
  });
  write("_keel/steps/lib.sh", readScript("lib"));
  write("_keel/commands.txt", commands.join("\n"));
  return written;
}

function main(): void {
  const { values } = parseArgs({
    options: { stack: { type: "string" }, out: { type: "string" } },
  });
  if (values.stack === undefined || values.out === undefined) {
    console.error("usage: npm run render -- --stack <name> --out <dir>");
    process.exit(2);
  }
  const root = resolve(__dirname, "..");
  try {
    const written = renderStack(
      values.stack,
      join(root, `Pulumi.${values.stack}.yaml`),
      values.out,
    );
    console.log(`wrote ${written.length} files under ${values.out}:`);
    for (const path of written) console.log(`  ${path}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}

if (require.main === module) main();
