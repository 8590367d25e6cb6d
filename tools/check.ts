// `npm run check -- --stack NAME [--file PATH]`: validates a stack's configuration offline with
// the rules `pulumi up` applies (the same code), plus the secret SSH key and the providers'
// tokens. Prints one line per problem and exits 1, or prints what `pulumi up` would create and
// exits 0; exits 2 when the command line is wrong. No Pulumi CLI, no network.
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Settings } from "../infra/config-rules";
import { cloudNames } from "../infra/names";
import { checkStackFile, readStackFile, stackFilePath, StackFileError } from "./stack-file";

const USAGE = `usage: npm run check -- --stack NAME [--file PATH]
  --stack NAME   the stack to check, e.g. staging (required)
  --file PATH    its stack file (default: Pulumi.NAME.yaml in the project directory)
  -h, --help     print this help
Secrets are seen as set or not, never read. A provider token may also come from the
environment, as pulumi up allows: DIGITALOCEAN_TOKEN, CLOUDFLARE_API_TOKEN.`;

export interface CheckRun {
  /** 0: ready; 1: problems; 2: wrong command line. */
  readonly status: number;
  readonly stdout: string[];
  readonly stderr: string[];
}

/** What `pulumi up` would create for these settings, in a few lines. */
function summary(stack: string, settings: Settings): string[] {
  const names = cloudNames(stack, settings.cloudflareAccountId);
  const cidrs = settings.sshAllowCidrs.length;
  const server =
    settings.existingHost === undefined
      ? `droplet ${settings.dropletSize} in ${settings.region} (Debian 13), reserved IP, firewall: SSH from ${cidrs} CIDR${cidrs === 1 ? "" : "s"}`
      : `existing host ${settings.existingHost} (no droplet, firewall, volume or reserved IP)`;
  const volume =
    settings.existingHost === undefined
      ? `${names.volumeName}, ${settings.volumeSizeGb} GB`
      : "none: the data stays on the host's disk";
  const kept = settings.retainData ? "kept" : "deleted";
  return [
    `  API      https://${settings.apiHost} (${settings.apiInstances} instances)`,
    `  server   ${server}`,
    `  volume   ${volume}`,
    `  bucket   ${names.bucketName} (R2)`,
    `  destroy  the volume and the bucket are ${kept}`,
  ];
}

/** Runs the check for a command line; `projectDir` holds Pulumi.yaml and the stack files. */
export function runCheck(
  args: readonly string[],
  environment: Readonly<Record<string, string | undefined>>,
  projectDir: string,
): CheckRun {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        stack: { type: "string" },
        file: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    return { status: 2, stdout: [], stderr: [(err as Error).message, USAGE] };
  }
  if (values.help) return { status: 0, stdout: [USAGE], stderr: [] };
  const stack = values.stack;
  if (stack === undefined || stack === "") {
    return { status: 2, stdout: [], stderr: ["--stack is required", USAGE] };
  }
  const path = values.file === undefined ? stackFilePath(projectDir, stack) : resolve(values.file);

  let file;
  try {
    file = readStackFile(path, stack);
  } catch (err) {
    if (!(err instanceof StackFileError)) throw err;
    return { status: 1, stdout: [`✘ ${err.message}`], stderr: [] };
  }
  const { settings, problems } = checkStackFile(file, environment);
  if (problems.length > 0) {
    const count = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    return {
      status: 1,
      stdout: [
        ...problems.map((p) => `✘ ${p.message}`),
        `config for stack ${stack} has ${count} (${basename(path)}): fix them and run the check again`,
      ],
      stderr: [],
    };
  }
  return {
    status: 0,
    stdout: [
      `pulumi up --stack ${stack} would create:`,
      ...summary(stack, settings),
      `config for stack ${stack} is ready`,
    ],
    stderr: [],
  };
}

function main(): void {
  const run = runCheck(process.argv.slice(2), process.env, resolve(__dirname, ".."));
  for (const line of run.stdout) console.log(line);
  for (const line of run.stderr) console.error(line);
  process.exitCode = run.status;
}

if (require.main === module) main();
