// The R2 bucket for evidence files and an API token that can read and write objects in that
// bucket and nothing else. R2's S3 credentials derive from the token: the access key id is the
// token's id, the secret access key the SHA-256 of the token's value.
import { createHash } from "node:crypto";
import * as cloudflare from "@pulumi/cloudflare";
import { local } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { R2_REGION } from "./names";

/** Permission groups for R2 object access, looked up by name (their ids are Cloudflare's). */
export const R2_OBJECT_PERMISSIONS = [
  "Workers R2 Storage Bucket Item Read",
  "Workers R2 Storage Bucket Item Write",
] as const;

/**
 * Run from the project directory by `pulumi destroy`: see infra/empty-bucket.ts. It needs only
 * production dependencies: ts-node and typescript, which Pulumi's Node.js runtime also uses to
 * run this program. Transpile-only: `npm run typecheck` finds type errors, and a destroy should
 * not stop at one.
 */
export const EMPTY_BUCKET_COMMAND =
  "node --require ts-node/register/transpile-only infra/empty-bucket.ts";

/** Cloudflare's resource name for one R2 bucket in the default jurisdiction. */
export function bucketResource(accountId: string, bucketName: string): string {
  return `com.cloudflare.edge.r2.bucket.${accountId}_default_${bucketName}`;
}

export interface StorageArgs {
  /** Prefix of every cloud name, e.g. keel-staging. */
  readonly prefix: string;
  readonly accountId: string;
  /** The bucket's name and the account's S3 endpoint (infra/names.ts). */
  readonly bucketName: string;
  readonly endpoint: string;
  /** Keep the bucket (and its objects) when the stack is destroyed. */
  readonly retainData: boolean;
}

export class Storage extends pulumi.ComponentResource {
  public readonly bucketName: pulumi.Output<string>;
  /** The S3 API endpoint of the account's R2. */
  public readonly endpoint: string;
  public readonly accessKeyId: pulumi.Output<string>;
  public readonly secretAccessKey: pulumi.Output<string>;

  constructor(name: string, args: StorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("keel:infra:Storage", name, {}, opts);

    const bucket = new cloudflare.R2Bucket(
      `${name}-bucket`,
      { accountId: args.accountId, name: args.bucketName },
      { parent: this, retainOnDelete: args.retainData },
    );

    const permissionGroups = R2_OBJECT_PERMISSIONS.map((permission) =>
      cloudflare
        .getApiTokenPermissionGroupsListOutput(
          { name: encodeURIComponent(permission) },
          { parent: this },
        )
        .apply((found) => {
          const group = found.results.find((g) => g.name === permission);
          if (group === undefined) {
            throw new Error(
              `Cloudflare has no permission group "${permission}": the token in cloudflare:apiToken needs "API Tokens Read"`,
            );
          }
          return { id: group.id };
        }),
    );

    const token = new cloudflare.ApiToken(
      `${name}-token`,
      {
        name: `${args.prefix}-r2`,
        policies: [
          {
            effect: "allow",
            permissionGroups,
            resources: bucket.name.apply((bucketName) =>
              JSON.stringify({ [bucketResource(args.accountId, bucketName)]: "*" }),
            ),
          },
        ],
      },
      { parent: this },
    );

    this.bucketName = bucket.name;
    this.endpoint = args.endpoint;
    this.accessKeyId = pulumi.secret(token.id);
    this.secretAccessKey = pulumi.secret(
      token.value.apply((value) => createHash("sha256").update(value).digest("hex")),
    );

    // Cloudflare deletes only empty buckets: on `pulumi destroy` this empties the bucket first,
    // unless retainData keeps it. It reads retainData from stdin, so changing the setting is an
    // in-place update that runs nothing; only removing the resource runs its delete.
    new local.Command(
      `${name}-emptier`,
      {
        delete: EMPTY_BUCKET_COMMAND,
        stdin: pulumi
          .all([bucket.name, this.accessKeyId, this.secretAccessKey])
          .apply(([bucketName, accessKeyId, secretAccessKey]) =>
            JSON.stringify({
              endpoint: this.endpoint,
              region: R2_REGION,
              bucket: bucketName,
              accessKeyId,
              secretAccessKey,
              retainData: args.retainData,
            }),
          ),
      },
      { parent: this },
    );

    this.registerOutputs({
      bucketName: this.bucketName,
      endpoint: this.endpoint,
      accessKeyId: this.accessKeyId,
      secretAccessKey: this.secretAccessKey,
    });
  }
}
