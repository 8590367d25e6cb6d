// `npm run verify -- --url https://api.example.com [--api-key-file FILE|-] [--ca root.pem] [--limits]`:
// checks a Keel deployment from outside, prints each named check, and ends with
// "N passed, N failed". Exit status 0 when nothing failed, 1 when something did, 2 when the
// command line is wrong.
import { lookup as dnsLookup } from "node:dns";
import { readFileSync } from "node:fs";
import { isIP, type LookupFunction } from "node:net";
import { parseArgs } from "node:util";
import { runChecks, type VerifyOptions } from "./checks";

const USAGE = `usage: npm run verify -- --url https://api.example.com [options]
  --url URL         the API's public base URL (required)
  --http-url URL    where port 80 answers (default: http://<host>/)
  --api-key-file F  a file holding the admin API key, or - to read it from stdin, e.g.
                    pulumi stack output adminApiKey --show-secrets | npm run verify -- … --api-key-file -
  --ca FILE         an extra trusted root certificate (PEM), e.g. a staging ACME root
  --resolve H:ADDR  reach host H at address ADDR, like curl (check a server before DNS points at it)
  --limits          also exceed the rate limits (locks you out of sign-in for a minute)
  -h, --help        print this help`;

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

/**
 * Looks up the API host the way the checks will. When it does not resolve, every check would
 * fail with the same DNS error, so this returns one line saying so instead.
 */
function unresolvable(url: string, lookup: LookupFunction): Promise<string | undefined> {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  return new Promise((resolve) => {
    lookup(host, {}, (err) => {
      if (err === null) resolve(undefined);
      else
        resolve(
          `${host} does not resolve (${err.code ?? err.message}): check DNS, or reach the ` +
            `server by address with --resolve ${host}:<server ip>`,
        );
    });
  });
}

/** The key is read from a file or stdin, never taken from the command line (ps shows those). */
function readApiKey(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const key = readFileSync(file === "-" ? 0 : file, "utf8").trim();
  if (key === "") throw new Error(`--api-key-file ${file} holds no key`);
  return key;
}

/** The command line's options; prints the usage and exits on --help or a wrong command line. */
function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string" },
        "http-url": { type: "string" },
        "api-key-file": { type: "string" },
        ca: { type: "string" },
        resolve: { type: "string" },
        limits: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    // parseArgs reports a wrong command line with an ERR_PARSE_ARGS_* code.
    const wrongCommandLine =
      err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS_");
    if (!wrongCommandLine) throw err;
    console.error(`${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (values.url === undefined) {
    console.error(`--url is required\n${USAGE}`);
    process.exit(2);
  }
  return { ...values, url: values.url };
}

async function main(): Promise<void> {
  const values = parseCommandLine();
  const lookup = values.resolve === undefined ? dnsLookup : resolving(values.resolve);
  const options: VerifyOptions = {
    url: values.url,
    httpUrl: values["http-url"],
    apiKey: readApiKey(values["api-key-file"]),
    ca: values.ca === undefined ? undefined : readFileSync(values.ca, "utf8"),
    lookup,
    limits: values.limits,
  };
  const dnsFailure = await unresolvable(options.url, lookup);
  if (dnsFailure !== undefined) {
    console.log(`✘ ${dnsFailure}`);
    console.log("0 passed, 1 failed");
    process.exitCode = 1;
    return;
  }
  const results = await runChecks(options, (result) => {
    const mark = { passed: "✔", failed: "✘", skipped: "-" }[result.status];
    const detail = result.message === undefined ? "" : `: ${result.message}`;
    console.log(`${mark} ${result.name} (${result.seconds.toFixed(1)}s)${detail}`);
  });
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
