// The only reader of pulumi.Config. Reads every `keel:` key once, validates it with the pure
// rules in config-rules.ts, and fails `pulumi up` before any resource is touched when a value
// is wrong, naming each bad key and its fix.
import * as pulumi from "@pulumi/pulumi";
import { checkSettings, ConfigError, type Settings } from "./config-rules";

/** Every key of the `keel` namespace, secret or not; anything else under `keel:` is a typo. */
export const CONFIG_KEYS = [
  "domain",
  "apiSubdomain",
  "cloudflareZoneId",
  "cloudflareAccountId",
  "region",
  "dropletSize",
  "sshPublicKey",
  "sshPrivateKey",
  "sshUser",
  "sshAllowCidrs",
  "allowSshFromAnywhere",
  "frontendOrigins",
  "acmeEmail",
  "acmeServer",
  "volumeSizeGb",
  "apiInstances",
  "existingHost",
  "secretsGeneration",
  "retainData",
  "alertEmail",
  "rateLimits",
] as const;

const SECRET_KEYS = new Set<string>(["sshPrivateKey"]);

export interface StackConfig extends Settings {
  /** The Pulumi stack name, e.g. staging; it prefixes cloud resource names. */
  readonly stack: string;
  /** The private half of sshPublicKey, used by Pulumi to provision the server. Secret. */
  readonly sshPrivateKey: pulumi.Output<string>;
}

function unknownKeys(): string[] {
  const known = new Set<string>(CONFIG_KEYS);
  return Object.keys(pulumi.runtime.allConfig())
    .filter((fullKey) => fullKey.startsWith("keel:"))
    .map((fullKey) => fullKey.slice("keel:".length))
    .filter((key) => !known.has(key));
}

/** Reads and validates the stack's configuration; throws a ConfigError listing every problem. */
export function loadStackConfig(): StackConfig {
  const config = new pulumi.Config("keel");
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    if (!SECRET_KEYS.has(key)) raw[key] = config.get(key);
  }
  const { settings, problems } = checkSettings(raw);
  for (const key of unknownKeys()) {
    problems.push({
      key,
      message: `keel:${key} is not a Keel setting; known keys: ${CONFIG_KEYS.join(", ")}`,
    });
  }
  const sshPrivateKey = config.getSecret("sshPrivateKey");
  if (sshPrivateKey === undefined) {
    problems.push({
      key: "sshPrivateKey",
      message:
        "keel:sshPrivateKey is required: `pulumi config set --secret keel:sshPrivateKey < ~/.ssh/id_ed25519`",
    });
  }
  if (problems.length > 0 || sshPrivateKey === undefined) throw new ConfigError(problems);
  return { ...settings, stack: pulumi.getStack(), sshPrivateKey };
}
