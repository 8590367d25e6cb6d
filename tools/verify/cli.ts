// `npm run verify -- --url https://api.example.com [--api-key-file FILE|-] [--ca root.pem] [--limits]`:
// checks a Keel deployment from outside, prints each named check, and ends with
// "N passed, N failed". Exit status 0 only when nothing failed.
import { lookup as dnsLookup } from "node:dns";
import { readFileSync } from "node:fs";
import { isIP, type LookupFunction } from "node:net";
import { parseArgs } from "node:util";
import { runChecks } from "./checks";

const USAGE = `usage: npm run verify -- --url https://api.example.com [options]
  --url URL         the API's public base URL (required)
  --http-url URL    where port 80 answers (default: http://<host>/)
  --api-key-file F  a file holding the admin API key, or - to read it from stdin, e.g.
                    pulumi stack output adminApiKey --show-secrets | npm run verify -- … --api-key-file -
  --ca FILE         an extra trusted root certificate (PEM), e.g. a staging ACME root
  --resolve H:ADDR  reach host H at address ADDR, like curl (check a server before DNS points at it)
  --limits          also exceed the rate limits (locks you out of sign-in for a minute)`;

/** A lookup that answers `host` with `address` and asks DNS for every other name. */
function resolving(spec: string): LookupFunction {
  const at = spec.indexOf(":");
  const host = spec.slice(0, at);
  const address = spec.slice(at + 1);
  const family = isIP(address);
  if (at <= 0 || family === 0) throw new Error(`--resolve wants HOST:ADDRESS, got "${spec}"`);
  return (hostname, options, callback) => {
    if (hostname !== host) return dnsLookup(hostname, options, callback);
    if (options.all === true) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/** The key is read from a file or stdin, never taken from the command line (ps shows those). */
function readApiKey(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const key = readFileSync(file === "-" ? 0 : file, "utf8").trim();
  if (key === "") throw new Error(`--api-key-file ${file} holds no key`);
  return key;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      "http-url": { type: "string" },
      "api-key-file": { type: "string" },
      ca: { type: "string" },
      resolve: { type: "string" },
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
      apiKey: readApiKey(values["api-key-file"]),
      ca: values.ca === undefined ? undefined : readFileSync(values.ca, "utf8"),
      lookup: values.resolve === undefined ? undefined : resolving(values.resolve),
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

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
});
