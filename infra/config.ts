// The only reader of pulumi.Config. Reads every `keel:` key once, validates it with the pure
// rules in config-rules.ts (the same rules `npm run check` applies to the stack file), and fails
// `pulumi up` before any resource is touched when a value is wrong, naming each bad key and its
// fix.
import * as pulumi from "@pulumi/pulumi";
import {
  checkSettings,
  ConfigError,
  missingCredential,
  SECRET_KEYS,
  type Settings,
} from "./config-rules";

export interface StackConfig extends Settings {
  /** The Pulumi stack name, e.g. staging; it prefixes cloud resource names. */
  readonly stack: string;
  /** The private half of sshPublicKey, used by Pulumi to provision the server. Secret. */
  readonly sshPrivateKey: pulumi.Output<string>;
  /**
   * The passphrase of an existing backup repository (an adopted backup bucket), or undefined to
   * generate one. Secret.
   */
  readonly backupPassphrase: pulumi.Output<string> | undefined;
  /** keel:smtpPassword: the SMTP server's password for alert mail, or undefined. Secret. */
  readonly smtpPassword: pulumi.Output<string> | undefined;
}

/** Reads and validates the stack's configuration; throws a ConfigError listing every problem. */
export function loadStackConfig(): StackConfig {
  const config = new pulumi.Config("keel");
  // Every key set under keel:, known or not, so that the rules see the misspelled ones too.
  const raw: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith("keel:")) continue;
    const key = fullKey.slice("keel:".length);
    // A secret is read as a secret below, never into the plain settings: the rules learn only
    // whether it is set (keel:smtpPassword needs keel:smtp, a username needs the password).
    if (SECRET_KEYS.includes(key)) raw[key] = value === "" ? undefined : true;
    else raw[key] = config.get(key);
  }
  const { settings, problems } = checkSettings(raw);
  const sshPrivateKey = config.getSecret("sshPrivateKey");
  if (sshPrivateKey === undefined) problems.push(missingCredential("keel:sshPrivateKey"));
  if (problems.length > 0 || sshPrivateKey === undefined) throw new ConfigError(problems);
  return {
    ...settings,
    stack: pulumi.getStack(),
    sshPrivateKey,
    backupPassphrase: config.getSecret("backupPassphrase"),
    smtpPassword: config.getSecret("smtpPassword"),
  };
}
