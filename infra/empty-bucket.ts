// Empties the R2 bucket when `pulumi destroy` is about to remove it: Cloudflare refuses to
// delete a bucket that still holds objects. The storage component's emptier command runs this
// on delete with its settings as JSON on stdin (they hold the bucket's credentials); while
// keel:retainData is true, it does nothing and the bucket is kept with its objects.
import {
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
  type ObjectIdentifier,
} from "@aws-sdk/client-s3";

export interface EmptyBucketRequest {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly retainData: boolean;
}

/** Deletes every object of the bucket, a page at a time; returns how many it deleted. */
export async function emptyBucket(request: EmptyBucketRequest): Promise<number> {
  const client = new S3Client({
    endpoint: request.endpoint,
    region: request.region,
    forcePathStyle: true,
    credentials: { accessKeyId: request.accessKeyId, secretAccessKey: request.secretAccessKey },
  });
  let deleted = 0;
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: request.bucket }));
      const keys: ObjectIdentifier[] = (page.Contents ?? []).flatMap((o) =>
        o.Key === undefined ? [] : [{ Key: o.Key }],
      );
      if (keys.length === 0) return deleted;
      const result = await client.send(
        new DeleteObjectsCommand({
          Bucket: request.bucket,
          Delete: { Objects: keys, Quiet: true },
        }),
      );
      const [failure] = result.Errors ?? [];
      if (failure !== undefined) {
        throw new Error(
          `could not delete ${failure.Key ?? "an object"}: ${failure.Message ?? failure.Code ?? "unknown error"}`,
        );
      }
      deleted += keys.length;
    }
  } finally {
    client.destroy();
  }
}

function parseRequest(text: string): EmptyBucketRequest {
  const value = JSON.parse(text) as Partial<EmptyBucketRequest>;
  for (const key of ["endpoint", "region", "bucket", "accessKeyId", "secretAccessKey"] as const) {
    if (typeof value[key] !== "string" || value[key] === "") {
      throw new Error(`the request on stdin has no ${key}`);
    }
  }
  if (typeof value.retainData !== "boolean")
    throw new Error("the request on stdin has no retainData");
  return value as EmptyBucketRequest;
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = parseRequest(Buffer.concat(chunks).toString("utf8"));
  if (request.retainData) {
    console.log(`keel: keeping bucket ${request.bucket} and its objects (keel:retainData is true)`);
    return;
  }
  const deleted = await emptyBucket(request);
  console.log(`keel: deleted ${deleted} object(s) from bucket ${request.bucket}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(
      `keel: emptying the bucket failed: ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  });
}
