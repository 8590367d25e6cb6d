// The api tier's property tests (test/api/properties.test.ts) with many more requests than CI
// runs: prints the generated request count, the statuses and the time taken, for api/README.md.
// Usage: npx tsx bench/api-properties.ts [--runs N] [--seed S]
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "1000" }, seed: { type: "string", default: "13" } },
});
const root = join(__dirname, "..");
const started = performance.now();
const run = spawnSync(
  "npx",
  [
    "mocha",
    "--node-option",
    "import=tsx",
    "--require",
    "test/api/support/hooks.ts",
    "--timeout",
    "0",
    "--reporter",
    "dot",
    "test/api/properties.test.ts",
  ],
  {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, KEEL_PROPERTY_RUNS: values.runs, KEEL_PROPERTY_SEED: values.seed },
  },
);
const seconds = (performance.now() - started) / 1000;
const output = `${run.stdout}${run.stderr}`;
const summary =
  /properties: .*/.exec(output)?.[0] ?? "properties: no summary (see the output above)";
if (run.status !== 0) console.log(output);
console.log(
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${new Date().toISOString()}`,
);
console.log(summary);
console.log(
  `${run.status === 0 ? "passed" : "FAILED"} in ${seconds.toFixed(1)} s (set-up included)`,
);
process.exitCode = run.status ?? 1;
