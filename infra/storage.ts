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

/** A permission group of Cloudflare's API tokens, by id. */
export interface PermissionGroup {
  readonly id: string;
}

/**
 * The permission groups of R2 object access, looked up by name (their ids are Cloudflare's),
 * once for every bucket's token.
 */
export function r2ObjectPermissionGroups(): pulumi.Output<PermissionGroup>[] {
  return R2_OBJECT_PERMISSIONS.map((permission) =>
    cloudflare
      .getApiTokenPermissionGroupsListOutput({ name: encodeURIComponent(permission) })
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
}

/** Objects under these prefixes can be neither deleted nor overwritten for `days`. */
export interface BucketLock {
  readonly days: number;
  readonly prefixes: readonly string[];
}

/**
 * The name of a bucket's token of `generation`: the first keeps the name it always had, so
 * upgrading Keel replaces no token; a later one gets its generation as a suffix.
 */
export function tokenNameOf(base: string, generation: number): string {
  return generation === 1 ? base : `${base}-gen${generation}`;
}

export interface StorageArgs {
  readonly accountId: string;
  /** Name of the bucket's own token, e.g. keel-staging-r2. */
  readonly tokenName: string;
  /**
   * The token's generation (keel:secretGenerations): a new one replaces the token. The new
   * token is created first, its credentials reach the server, and the old one is deleted at the
   * end of `pulumi up`.
   */
  readonly tokenGeneration: number;
  /** R2 object read and write (r2ObjectPermissionGroups). */
  readonly permissionGroups: pulumi.Input<PermissionGroup>[];
  /** Adopt the bucket of this name (kept by an earlier destroy) instead of creating it. */
  readonly adopt?: boolean;
  /** Lock rules for the bucket's objects; none when absent or 0 days. */
  readonly lock?: BucketLock;
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
      {
        parent: this,
        retainOnDelete: args.retainData,
        // Cloudflare's import id of a bucket: account, name, jurisdiction.
        ...(args.adopt === true ? { import: `${args.accountId}/${args.bucketName}/default` } : {}),
      },
    );

    const token = new cloudflare.ApiToken(
      `${name}-token`,
      {
        name: tokenNameOf(args.tokenName, args.tokenGeneration),
        policies: [
          {
            effect: "allow",
            permissionGroups: args.permissionGroups,
            resources: bucket.name.apply((bucketName) =>
              JSON.stringify({ [bucketResource(args.accountId, bucketName)]: "*" }),
            ),
          },
        ],
      },
      // Cloudflare renames a token in place, keeping its value: a new name must be a new token.
      { parent: this, replaceOnChanges: ["name"] },
    );

    if (args.lock !== undefined && args.lock.days > 0) {
      const maxAgeSeconds = args.lock.days * 24 * 60 * 60;
      new cloudflare.R2BucketLock(
        `${name}-lock`,
        {
          accountId: args.accountId,
          bucketName: bucket.name,
          rules: args.lock.prefixes.map((prefix) => ({
            id: `keep ${prefix}* ${args.lock?.days} days`,
            condition: { type: "Age", maxAgeSeconds },
            enabled: true,
            prefix,
          })),
        },
        { parent: this },
      );
    }

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
