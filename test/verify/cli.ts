// `npm run verify -- --url https://api.example.com [--api-key KEY] [--ca root.pem] [--limits]`:
// checks a Keel deployment from outside, prints each named check, and ends with
// "N passed, N failed". Exit status 0 only when nothing failed.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runChecks } from "./checks";

const USAGE = `usage: npm run verify -- --url https://api.example.com [options]
  --url URL         the API's public base URL (required)
  --http-url URL    where port 80 answers (default: http://<host>/)
  --api-key KEY     the admin API key: pulumi stack output adminApiKey --show-secrets
  --ca FILE         an extra trusted root certificate (PEM), e.g. a staging ACME root
  --limits          also exceed the rate limits (locks you out of sign-in for a minute)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      "http-url": { type: "string" },
      "api-key": { type: "string" },
      ca: { type: "string" },
      limits: { type: "boolean", default: false },
    },
  });
  if (values.url === undefined) {
    console.error(USAGE);
    process.exit(2);
  }
  const results = await runChecks(
    {
      url: values.url,
      httpUrl: values["http-url"],
      apiKey: values["api-key"] ?? process.env.KEEL_API_KEY,
      ca: values.ca === undefined ? undefined : readFileSync(values.ca, "utf8"),
      limits: values.limits,
    },
    (result) => {
      const mark = { passed: "✔", failed: "✘", skipped: "-" }[result.status];
      const detail = result.message === undefined ? "" : `: ${result.message}`;
      console.log(`${mark} ${result.name} (${result.seconds.toFixed(1)}s)${detail}`);
    },
  );
  const passed = results.filter((r) => r.status === "passed").length;
  const failed = results.filter((r) => r.status === "failed").length;
  const skipped = results.length - passed - failed;
  if (skipped > 0) console.log(`${skipped} skipped (not counted as passed)`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

void main();
