// Random secrets for the platform. They stay secret Outputs from creation to the server: they
// reach it only on a provisioning step's stdin. Bumping keel:secretsGeneration changes the
// keepers, which replaces every password but the backup passphrase; bumping one field of
// keel:secretGenerations replaces that password alone. `pulumi up` then applies the new values.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { SecretGenerations } from "./config-rules";

/** Length of each generated secret; the API refuses shorter JWT secrets and bootstrap keys. */
export const SECRET_LENGTHS = {
  postgresPassword: 40,
  redisPassword: 40,
  jwtSecret: 64,
  adminApiKey: 48,
  backupCipherPass: 64,
} as const;

/**
 * The generation in one secret's keepers: keel:secretsGeneration, followed by the secret's own
 * generation once that is bumped. A secret never rotated alone keeps exactly the keepers it had
 * before per-secret generations existed, so upgrading Keel replaces nothing.
 */
export function keeperGeneration(all: number, own: number): string {
  return own === 1 ? String(all) : `${all}.${own}`;
}

export interface SecretsArgs {
  /** keel:secretsGeneration; a new number rotates every secret. */
  readonly generation: number;
  /** keel:secretGenerations; a new number rotates that secret alone. */
  readonly generations: SecretGenerations;
  /** keel:backupPassphrase: the passphrase of an adopted backup repository, instead of a new one. */
  readonly backupPassphrase?: pulumi.Input<string>;
}

export class Secrets extends pulumi.ComponentResource {
  /** Password of the API's Postgres role. */
  public readonly postgresPassword: pulumi.Output<string>;
  /** Password of the API's Redis ACL user. */
  public readonly redisPassword: pulumi.Output<string>;
  /** Key that signs the API's access tokens (JWT, HS256). */
  public readonly jwtSecret: pulumi.Output<string>;
  /** API key of the "default" organisation, created by the API at start-up. */
  public readonly adminApiKey: pulumi.Output<string>;
  /**
   * Encrypts the backup repository. It never rotates (secretsGeneration leaves it alone): the
   * backups already written can only be read with it.
   */
  public readonly backupCipherPass: pulumi.Output<string>;

  constructor(name: string, args: SecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("keel:infra:Secrets", name, {}, opts);

    // Letters and digits only: every secret is safe inside a URL, an env file and a shell word.
    // `own`: the secret's own generation; none for the backup passphrase, which never rotates.
    const password = (suffix: string, length: number, own?: number): pulumi.Output<string> =>
      pulumi.secret(
        new random.RandomPassword(
          `${name}-${suffix}`,
          {
            length,
            special: false,
            minLower: 4,
            minUpper: 4,
            minNumeric: 4,
            ...(own === undefined
              ? {}
              : { keepers: { generation: keeperGeneration(args.generation, own) } }),
          },
          { parent: this },
        ).result,
      );

    const own = args.generations;
    this.postgresPassword = password("postgres", SECRET_LENGTHS.postgresPassword, own.postgres);
    this.redisPassword = password("redis", SECRET_LENGTHS.redisPassword, own.redis);
    this.jwtSecret = password("jwt", SECRET_LENGTHS.jwtSecret, own.jwt);
    this.adminApiKey = password("admin-api-key", SECRET_LENGTHS.adminApiKey, own.adminApiKey);
    this.backupCipherPass =
      args.backupPassphrase === undefined
        ? password("backup-cipher-pass", SECRET_LENGTHS.backupCipherPass)
        : pulumi.secret(args.backupPassphrase);

    this.registerOutputs({
      postgresPassword: this.postgresPassword,
      redisPassword: this.redisPassword,
      jwtSecret: this.jwtSecret,
      adminApiKey: this.adminApiKey,
      backupCipherPass: this.backupCipherPass,
    });
  }
}
