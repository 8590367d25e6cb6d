// Random secrets for the platform. They stay secret Outputs from creation to the server: they
// reach it only on a provisioning step's stdin. Bumping keel:secretsGeneration changes the
// keepers, which replaces every password but the backup passphrase, and `pulumi up` then
// applies the new values.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/** Length of each generated secret; the API refuses shorter JWT secrets and bootstrap keys. */
export const SECRET_LENGTHS = {
  postgresPassword: 40,
  redisPassword: 40,
  jwtSecret: 64,
  adminApiKey: 48,
  backupCipherPass: 64,
} as const;

export interface SecretsArgs {
  /** keel:secretsGeneration; a new number rotates every secret. */
  readonly generation: number;
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

    const keepers = { generation: String(args.generation) };
    // Letters and digits only: every secret is safe inside a URL, an env file and a shell word.
    const password = (suffix: string, length: number, rotates = true): pulumi.Output<string> =>
      pulumi.secret(
        new random.RandomPassword(
          `${name}-${suffix}`,
          {
            length,
            special: false,
            minLower: 4,
            minUpper: 4,
            minNumeric: 4,
            ...(rotates ? { keepers } : {}),
          },
          { parent: this },
        ).result,
      );

    this.postgresPassword = password("postgres", SECRET_LENGTHS.postgresPassword);
    this.redisPassword = password("redis", SECRET_LENGTHS.redisPassword);
    this.jwtSecret = password("jwt", SECRET_LENGTHS.jwtSecret);
    this.adminApiKey = password("admin-api-key", SECRET_LENGTHS.adminApiKey);
    this.backupCipherPass =
      args.backupPassphrase === undefined
        ? password("backup-cipher-pass", SECRET_LENGTHS.backupCipherPass, false)
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
