// The bucket emptier that `pulumi destroy` runs before deleting the R2 bucket, against a real
// S3-compatible server (s3rver) and run as the command runs it: a process reading JSON on stdin.
import { runCommand } from "../support/run";
import { execFile } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { expect } from "chai";
import S3rver from "s3rver";
import { EMPTY_BUCKET_COMMAND } from "../../infra/storage";

const ROOT = join(__dirname, "..", "..");

describe("emptying the bucket on destroy", function () {
  this.timeout(60_000);
  let server: S3rver;
  let directory: string;
  let client: S3Client;
  let request: Record<string, unknown>;
  const bucket = "keel-test-evidence";

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), "keel-s3rver-"));
    server = new S3rver({
      address: "127.0.0.1",
      port: 0,
      silent: true,
      directory,
      configureBuckets: [{ name: bucket }],
    });
    const address = await server.run();
    const endpoint = `http://127.0.0.1:${address.port}`;
    request = {
      endpoint,
      region: "auto",
      bucket,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
    };
    client = new S3Client({
      endpoint,
      region: "auto",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
  });

  after(async () => {
    client.destroy();
    await server.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** Runs the command as the emptier does; asynchronously, as s3rver answers in this process. */
  const runEmptier = (input: unknown, cwd = ROOT) =>
    runCommand("sh", ["-c", EMPTY_BUCKET_COMMAND], {
      cwd,
      // Only the SDK's notice that it will need Node 22 in 2027; stderr must hold nothing else.
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      stdin: JSON.stringify(input),
    });

  const count = async (name = bucket): Promise<number> =>
    (await client.send(new ListObjectsV2Command({ Bucket: name }))).KeyCount ?? 0;

  it("when retainData is true, then the objects stay", async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "evidence/kept", Body: "x" }));
    const result = await runEmptier({ ...request, retainData: true });
    expect(result.stderr).to.equal("");
    expect(result.status).to.equal(0);
    expect(result.stdout).to.include("keeping bucket keel-test-evidence");
    expect(await count()).to.equal(1);
  });

  it("when retainData is false, then every object is deleted and the bucket can be deleted", async () => {
    // Under 1000 objects: s3rver cannot make listing continuation tokens on OpenSSL 3. The
    // emptier never uses them; it lists again after deleting each page.
    await Promise.all(
      Array.from({ length: 250 }, (_, i) =>
        client.send(
          new PutObjectCommand({ Bucket: bucket, Key: `evidence/${i % 5}/${i}`, Body: "x" }),
        ),
      ),
    );
    expect(await count()).to.equal(251);
    const result = await runEmptier({ ...request, retainData: false });
    expect(result.stderr).to.equal("");
    expect(result.status).to.equal(0);
    expect(result.stdout).to.include("deleted 251 object(s) from bucket keel-test-evidence");
    expect(await count()).to.equal(0);
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  });

  it("when the request on stdin is incomplete, then it fails with a message and deletes nothing", async () => {
    const result = await runEmptier({ bucket, retainData: false });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include("the request on stdin has no endpoint");
  });

  it("when only production dependencies are installed, then the command still empties the bucket", async function () {
    this.timeout(180_000);
    // What `pulumi destroy` needs from the project: its manifests, its tsconfig and infra/.
    const project = mkdtempSync(join(tmpdir(), "keel-prod-install-"));
    try {
      for (const file of ["package.json", "package-lock.json", "tsconfig.json"]) {
        copyFileSync(join(ROOT, file), join(project, file));
      }
      mkdirSync(join(project, "api"));
      copyFileSync(join(ROOT, "api", "package.json"), join(project, "api", "package.json"));
      cpSync(join(ROOT, "infra"), join(project, "infra"), { recursive: true });
      await promisify(execFile)(
        "npm",
        ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
        { cwd: project },
      );
      expect(() => require.resolve("tsx", { paths: [project] })).to.throw(/Cannot find module/);

      const other = "keel-test-prod-install";
      await client.send(new CreateBucketCommand({ Bucket: other }));
      for (const key of ["evidence/a", "evidence/b", "evidence/c"]) {
        await client.send(new PutObjectCommand({ Bucket: other, Key: key, Body: "x" }));
      }
      const result = await runEmptier({ ...request, bucket: other, retainData: false }, project);
      expect(result.stderr).to.equal("");
      expect(result.status).to.equal(0);
      expect(result.stdout).to.include(`deleted 3 object(s) from bucket ${other}`);
      expect(await count(other)).to.equal(0);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
