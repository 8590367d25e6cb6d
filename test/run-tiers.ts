// Runs the named test tiers one after another, each as its own mocha process with the tier's
// .mocharc.json, and ends with the line CI reads: "N passed, N failed". First it installs the
// Debian packages the tiers need when some are missing (as root; otherwise it names them). A
// tier that crashes before reporting counts as one failure; a skipped test counts as a failure.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const TIERS = ["infra", "tools", "provisioning", "api", "e2e"] as const;
type Tier = (typeof TIERS)[number];

interface Counts {
  passed: number;
  failed: number;
  pending: number;
}

const root = resolve(__dirname, "..");

function parseTiers(args: string[]): Tier[] {
  const unknown = args.filter((a) => !(TIERS as readonly string[]).includes(a));
  if (unknown.length > 0 || args.length === 0) {
    console.error(`usage: run-tiers <${TIERS.join("|")}>... (unknown: ${unknown.join(", ")})`);
    process.exit(2);
  }
  return args as Tier[];
}

function runTier(tier: Tier, scratch: string): Counts {
  const countsFile = join(scratch, `${tier}.json`);
  const config = join(root, "test", tier, ".mocharc.json");
  const started = Date.now();
  const result = spawnSync(
    "npx",
    [
      "mocha",
      "--config",
      config,
      "--node-option",
      "import=tsx",
      "--reporter",
      join(root, "test/support/count-reporter.cjs"),
    ],
    { cwd: root, stdio: "inherit", env: { ...process.env, KEEL_TEST_COUNTS: countsFile } },
  );
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (!existsSync(countsFile)) {
    console.error(
      `tier ${tier}: mocha exited (${result.status ?? result.signal}) without a report`,
    );
    return { passed: 0, failed: 1, pending: 0 };
  }
  const counts = JSON.parse(readFileSync(countsFile, "utf8")) as Counts;
  console.log(
    `tier ${tier}: ${counts.passed} passed, ${counts.failed} failed, ${counts.pending} skipped (${seconds}s)`,
  );
  return counts;
}

/** The Debian packages the tiers need, from the one list in local/host-packages.sh. */
function ensureHostPackages(): void {
  const result = spawnSync("bash", [join(root, "local", "host-packages.sh"), "install"], {
    stdio: "inherit",
  });
  if (result.status !== 0) {
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}

function main(): void {
  const tiers = parseTiers(process.argv.slice(2));
  ensureHostPackages();
  const scratch = mkdtempSync(join(tmpdir(), "keel-tests-"));
  let passed = 0;
  let failed = 0;
  try {
    for (const tier of tiers) {
      const counts = runTier(tier, scratch);
      passed += counts.passed;
      failed += counts.failed + counts.pending;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main();
