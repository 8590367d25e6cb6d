// `npm run local` as a newcomer runs it: it brings the whole platform up on this machine, prints
// lines that work as printed (curl, npm run verify), re-applies only what changed on a second
// run, keeps the admin key in a 0600 file, and `down` leaves nothing running.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { STEP_NAMES } from "../../provisioning/steps";
import { CHECKS } from "../../tools/verify/checks";

const ROOT = join(__dirname, "..", "..");

interface Run {
  readonly status: number | null;
  readonly stdout: string;
}

/** Runs a command line as printed (plain words, no quoting) from the project directory. */
function run(line: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const [program = "", ...args] = line.trim().split(/\s+/);
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout }));
  });
}

/** A process's state letter from /proc, or "gone". */
function processState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8")
      .replace(/^.*\) /s, "")
      .charAt(0);
  } catch {
    return "gone";
  }
}

/** The command a printed line offers, e.g. the one after "verify". */
function printed(stdout: string, label: string): string {
  const line = stdout.split("\n").find((l) => l.trimStart().startsWith(`${label} `));
  expect(line, `a "${label}" line in:\n${stdout}`).to.be.a("string");
  return (line ?? "").trim().slice(label.length).trim();
}

describe("npm run local", function () {
  this.timeout(20 * 60_000);

  const stateDir = mkdtempSync(join(tmpdir(), "keel-local-"));
  const stackFile = join(stateDir, "Pulumi.local.yaml");
  const env = { ...process.env, KEEL_LOCAL_DIR: stateDir };
  let first: Run;

  before(async () => {
    writeFileSync(stackFile, "config:\n  keel:apiInstances: 2\n");
    first = await run(`npm run --silent local -- up --stack-file ${stackFile}`, env);
    console.log(first.stdout.replace(/^/gm, "      "));
  });

  after(async () => {
    await run("npm run --silent local -- down", env);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("when run on this machine, then the platform comes up and says where and how long it took", () => {
    expect(first.status).to.equal(0);
    expect(first.stdout).to.match(/ready in \d+ s \((a cold boot|a warm boot)/);
    expect(printed(first.stdout, "API")).to.match(/^https:\/\/api\.standin\.test:\d+$/);
  });

  it("when the printed curl line is run, then /health answers", async () => {
    const curl = await run(printed(first.stdout, "try"), env);
    expect(curl.status).to.equal(0);
    expect(JSON.parse(curl.stdout)).to.deep.equal({ status: "ok" });
  });

  it("when the printed npm run verify line is run, then every check passes", async () => {
    const verify = await run(printed(first.stdout, "verify"), env);
    const checks = CHECKS.filter((check) => check.limits !== true).length;
    expect(verify.stdout.trim().split("\n").at(-1), verify.stdout).to.equal(
      `${checks} passed, 0 failed`,
    );
    expect(verify.status).to.equal(0);
  });

  it("when the admin key is looked for, then it is in a 0600 file and printed only when asked", async () => {
    const file = join(stateDir, "admin-api-key");
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const key = readFileSync(file, "utf8").trim();
    expect(key).to.match(/^[A-Za-z0-9]{48}$/);
    expect(first.stdout).not.to.include(key);
    const asked = await run("npm run --silent local -- key", env);
    expect(asked.stdout.trim()).to.equal(key);
  });

  it("when the printed ops line is run, then the local operator key reaches keel-ops and all is well", async () => {
    const ops = await run(printed(first.stdout, "operate"), env);
    expect(ops.stdout.trim().split("\n").at(-1), ops.stdout).to.equal("all well");
    expect(ops.status).to.equal(0);
    expect(statSync(join(stateDir, "operator-key")).mode & 0o777).to.equal(0o600);
  });

  it("when run again with nothing changed, then no step runs", async () => {
    const again = await run(`npm run --silent local -- up --stack-file ${stackFile}`, env);
    expect(again.status).to.equal(0);
    expect(again.stdout).to.match(/nothing changed/);
    expect(again.stdout.match(/: unchanged/g)).to.have.length(STEP_NAMES.length);
  });

  it("when the stack file changes a rate limit, then only the nginx step runs again", async () => {
    writeFileSync(
      stackFile,
      "config:\n  keel:apiInstances: 2\n  keel:rateLimits:\n    edgeAuthPerMinute: 12\n",
    );
    const changed = await run(`npm run --silent local -- up --stack-file ${stackFile}`, env);
    expect(changed.status, changed.stdout).to.equal(0);
    const ran = [...changed.stdout.matchAll(/step (\w+): [\d.]+s/g)].map((m) => m[1]);
    expect(ran).to.deep.equal(["nginx"]);
    expect(changed.stdout).to.match(/ready in \d+ s \(re-applied; 1 step\(s\) run\)/);
  });

  it("when it is taken down, then nothing of it runs and status says so", async () => {
    const state = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as {
      ready: { harnessPid: number; runDir: string };
    };
    const down = await run("npm run --silent local -- down", env);
    expect(down.status).to.equal(0);
    // Gone, or a zombie whose parent (a session's reaper) has not collected it yet.
    expect(processState(state.ready.harnessPid), "the harness").to.be.oneOf(["gone", "Z"]);
    expect(() => statSync(state.ready.runDir)).to.throw();
    expect(() => statSync(join(stateDir, "operator-key"))).to.throw();
    const status = await run("npm run --silent local -- status", env);
    expect(status.status).to.equal(1);
    expect(status.stdout).to.include("not running");
  });
});
