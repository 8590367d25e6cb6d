// Reads a Pulumi stack file (Pulumi.<stack>.yaml) offline and validates it with the rules
// `pulumi up` applies, for `npm run check` and `npm run render`. No Pulumi CLI, no network:
// encrypted (`secure:`) values cannot be read here, only seen to be set.
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseDocument } from "yaml";
import {
  checkCredentials,
  checkSettings,
  CONFIG_KEYS,
  SECRET_KEYS,
  type ConfigProblem,
  type Settings,
} from "../infra/config-rules";

export interface StackFile {
  readonly path: string;
  readonly stack: string;
  /** Every key under `config:`, e.g. keel:domain or digitalocean:token, with its value. */
  readonly config: Readonly<Record<string, unknown>>;
}

/** The stack file could not be read: the message names the file and what to do. */
export class StackFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackFileError";
  }
}

/** Where Pulumi keeps a stack's configuration: Pulumi.<stack>.yaml beside Pulumi.yaml. */
export function stackFilePath(projectDir: string, stack: string): string {
  return join(projectDir, `Pulumi.${stack}.yaml`);
}

/** True for a value Pulumi stores encrypted: `secure: v1:…`. */
function isEncrypted(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    Object.keys(value).length === 1 &&
    typeof (value as { secure?: unknown }).secure === "string"
  );
}

function readText(path: string, stack: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new StackFileError(`cannot read ${path}: ${(err as Error).message}`);
    }
    const name = basename(path);
    throw new StackFileError(
      `${path} does not exist. Create stack ${stack} with \`pulumi stack init ${stack}\`, ` +
        `then copy the keel: keys of Pulumi.staging.yaml into ${name} and put in your values ` +
        `(or set them one by one: \`pulumi config set --stack ${stack} keel:domain <your domain>\`)`,
    );
  }
}

/** Reads a stack file; throws a StackFileError naming the file (and line) when it cannot. */
export function readStackFile(path: string, stack: string): StackFile {
  const document = parseDocument(readText(path, stack));
  const [error] = document.errors;
  if (error !== undefined) {
    const [at] = error.linePos ?? [];
    const where = at === undefined ? path : `${path}:${at.line}:${at.col}`;
    const reason = error.message.split(" at line ")[0] ?? error.message;
    throw new StackFileError(`${where}: not valid YAML: ${reason}`);
  }
  const top = document.toJS() as unknown;
  if (top !== null && (typeof top !== "object" || Array.isArray(top))) {
    throw new StackFileError(`${path}: a stack file is a mapping with a config: section`);
  }
  const config = (top as { config?: unknown } | null)?.config ?? {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new StackFileError(`${path}: config: must map keys such as keel:domain to values`);
  }
  return { path, stack, config: config as Record<string, unknown> };
}

/** The stack file's `keel:` keys, without the prefix; an encrypted value is `{ secure: … }`. */
export function keelConfig(file: StackFile): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(file.config)
      .filter(([key]) => key.startsWith("keel:"))
      .map(([key, value]) => [key.slice("keel:".length), value]),
  );
}

export interface StackFileCheck {
  readonly settings: Settings;
  readonly problems: ConfigProblem[];
}

/**
 * Validates a stack file with the rules of `pulumi up`: the settings (unknown keys, placeholders
 * and documentation-only values included) and, given the environment the providers would read,
 * the secret SSH key and the providers' tokens. Render needs no credentials: it passes none.
 */
export function checkStackFile(
  file: StackFile,
  environment?: Readonly<Record<string, string | undefined>>,
): StackFileCheck {
  const keel = keelConfig(file);
  // Keel keeps its settings in plain text; an encrypted one cannot be checked (or rendered).
  const encrypted = Object.keys(keel).filter(
    (key) =>
      isEncrypted(keel[key]) &&
      !SECRET_KEYS.includes(key) &&
      (CONFIG_KEYS as readonly string[]).includes(key),
  );
  const raw = Object.fromEntries(Object.entries(keel).filter(([key]) => !encrypted.includes(key)));
  const { settings, problems } = checkSettings(raw);
  const relevant = problems.filter((p) => !encrypted.includes(p.key));
  for (const key of encrypted) {
    relevant.push({
      key,
      message:
        `keel:${key} is encrypted (secure:) in ${basename(file.path)}, so it cannot be checked ` +
        `offline; it is not a secret: set it in plain text with ` +
        `\`pulumi config set --stack ${file.stack} keel:${key} <value>\``,
    });
  }
  if (environment !== undefined) {
    const isSet = (key: string): boolean => {
      const value = file.config[key];
      return value !== undefined && value !== null && value !== "";
    };
    relevant.push(...checkCredentials(isSet, environment));
  }
  return { settings, problems: relevant };
}
