// The verification CLI's command line and its pre-flight DNS check, run as an operator runs it:
// the real CLI in a child process.
import { runCommand, type Run } from "../support/run";
import { join } from "node:path";
import { expect } from "chai";

const ROOT = join(__dirname, "..", "..");

function verify(...args: string[]): Promise<Run> {
  return runCommand(process.execPath, ["--import", "tsx", "tools/verify/cli.ts", ...args], {
    cwd: ROOT,
  });
}

describe("the verify command line", () => {
  for (const flag of ["--help", "-h"]) {
    it(`when run with ${flag}, then it prints the usage and exits 0`, async () => {
      const run = await verify(flag);
      expect(run.status).to.equal(0);
      expect(run.stdout).to.match(/^usage: npm run verify -- --url /);
      expect(run.stdout).to.include("--resolve H:ADDR");
      expect(run.stderr).to.equal("");
    });
  }

  it("when given an unknown option, then it names it, prints the usage and exits 2", async () => {
    const run = await verify("--url", "https://keel-verify.invalid", "--no-such-option");
    expect(run.status).to.equal(2);
    const [error, usage] = run.stderr.split("\n");
    expect(error).to.include("Unknown option '--no-such-option'");
    expect(usage).to.match(/^usage: npm run verify -- --url /);
    expect(run.stdout).to.equal("");
  });

  it("when the API host does not resolve, then it prints one failure that names --resolve and exits 1", async () => {
    // Names under .invalid never resolve (RFC 2606).
    const run = await verify("--url", "https://keel-verify.invalid");
    expect(run.status).to.equal(1);
    // ENOTFOUND from a resolver that answers, EAI_AGAIN from one that cannot be reached.
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(
      /^✘ keel-verify\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\): check DNS, or reach the server by address with --resolve keel-verify\.invalid:<server ip>$/,
    );
    expect(lines[1]).to.equal("0 passed, 1 failed");
  });
});
