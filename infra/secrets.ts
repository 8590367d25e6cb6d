// Random secrets for the platform. They stay secret Outputs from creation to the server: they
// reach it only on a provisioning step's stdin. Bumping keel:secretsGeneration changes the
// keepers, which replaces every password, and `pulumi up` then applies the new values.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface SecretsArgs {
  /** keel:secretsGeneration; a new number rotates every secret. */
  readonly generation: number;
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

  constructor(name: string, args: SecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("keel:infra:Secrets", name, {}, opts);

    const keepers = { generation: String(args.generation) };
    // Letters and digits only: every secret is safe inside a URL, an env file and a shell word.
    const password = (suffix: string, length: number): pulumi.Output<string> =>
      pulumi.secret(
        new random.RandomPassword(
          `${name}-${suffix}`,
          { length, special: false, minLower: 4, minUpper: 4, minNumeric: 4, keepers },
          { parent: this },
        ).result,
      );

    this.postgresPassword = password("postgres", 40);
    this.redisPassword = password("redis", 40);
    this.jwtSecret = password("jwt", 64);
    this.adminApiKey = password("admin-api-key", 48);

    this.registerOutputs({
      postgresPassword: this.postgresPassword,
      redisPassword: this.redisPassword,
      jwtSecret: this.jwtSecret,
      adminApiKey: this.adminApiKey,
    });
  }
}
