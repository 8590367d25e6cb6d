// `npm run ops -- --stack NAME`: the server's address comes from `pulumi stack output serverIp`,
// and keel-ops is asked over SSH as the operator user. Neither the Pulumi CLI nor a server is
// here, so two scripts stand in for `pulumi` and `ssh` on PATH and record how they were called.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { runCommand, type Run } from "../support/run";

const ROOT = join(__dirname, "..", "..");

describe("npm run ops --stack", () => {
  let bin: string;

  /** A script named `name` on the test's PATH: it records its arguments, then runs `body`. */
  const standIn = (name: string, body: string): void => {
    const file = join(bin, name);
    writeFileSync(file, `#!/bin/sh\nprintf '%s\\n' "$*" >> "${bin}/${name}.calls"\n${body}\n`);
    chmodSync(file, 0o755);
  };
  const calls = (name: string): string[] =>
    readFileSync(join(bin, `${name}.calls`), "utf8")
      .trim()
      .split("\n");
  const ops = (...args: string[]): Promise<Run> =>
    runCommand(process.execPath, ["--import", "tsx", "tools/ops/cli.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    });

  beforeEach(() => {
    bin = mkdtempSync(join(tmpdir(), "keel-ops-cli-"));
  });

  afterEach(() => rmSync(bin, { recursive: true, force: true }));

  it("when a stack is named, then its serverIp output is the address keel-ops is asked at as keel-ops", async () => {
    standIn("pulumi", "echo 203.0.113.7");
    standIn(
      "ssh",
      `echo '[{"id":"0123456789abcdef","active":true,"arrivedAt":null,"migrated":true}]'`,
    );
    const run = await ops("--stack", "staging", "releases");
    expect(run.stderr).to.equal("");
    expect(run.status).to.equal(0);
    expect(run.stdout).to.match(/^0123456789abcdef +unknown +yes +active$/m);
    expect(calls("pulumi")).to.deep.equal(["stack output serverIp --stack staging"]);
    const [ssh] = calls("ssh");
    expect(ssh).to.match(/ keel-ops@203\.0\.113\.7 releases$/);
    expect(ssh).to.include("-o StrictHostKeyChecking=accept-new");
  });

  it("when Pulumi cannot tell the stack's address, then ops says which stack and why, and asks nothing over SSH", async () => {
    standIn("pulumi", "echo 'error: no stack named nope found' >&2; exit 255");
    standIn("ssh", "exit 0");
    const run = await ops("--stack", "nope", "status");
    expect(run.status).to.equal(1);
    expect(run.stderr).to.include(
      "keel ops: could not read the server address of stack nope: error: no stack named nope found",
    );
    expect(() => calls("ssh")).to.throw(/ENOENT/);
  });
});
