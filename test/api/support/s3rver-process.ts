// `node --import tsx s3rver-process.ts <directory> <bucket>`: an s3rver on a random port that
// prints the port on stdout and serves until killed (see freeze.ts).
import S3rver from "s3rver";

async function main(): Promise<void> {
  const [directory, bucket] = process.argv.slice(2);
  if (directory === undefined || bucket === undefined)
    throw new Error("usage: <directory> <bucket>");
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  process.stdout.write(`${port}\n`);
}

void main();
