// Static checks of the step scripts: shellcheck with no exclusions, and the house shape
// (strict mode, functions first, `main "$@"` as the last line).
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { BACKUP_LAYOUT_FILE } from "../../provisioning/layout";
import { STEP_NAMES } from "../../provisioning/steps";

const root = join(__dirname, "..", "..");
const scriptsDir = join(root, "provisioning", "scripts");
const scripts = readdirSync(scriptsDir).filter((name) => name.endsWith(".sh"));

describe("step scripts", () => {
  it("when listed, then there is one script per step plus the shared library", () => {
    expect(scripts.sort()).to.deep.equal([...STEP_NAMES.map((n) => `${n}.sh`), "lib.sh"].sort());
  });

  it("when shellcheck reads them, then it reports nothing at any severity", () => {
    const result = spawnSync("shellcheck", ["--severity=style", ...scripts], {
      cwd: scriptsDir,
      encoding: "utf8",
    });
    expect(result.error, "shellcheck must be installed").to.equal(undefined);
    expect(result.stdout + result.stderr).to.equal("");
    expect(result.status).to.equal(0);
  });

  it("when shellcheck reads the tools the steps install, then it reports nothing at any severity", () => {
    const toolsDir = join(root, "provisioning", "server");
    const tools = readdirSync(toolsDir).filter((name) => name.endsWith(".sh"));
    expect(tools).to.include("keel-backup.sh");
    const result = spawnSync("shellcheck", ["--severity=style", ...tools], {
      cwd: toolsDir,
      encoding: "utf8",
    });
    expect(result.stdout + result.stderr).to.equal("");
    expect(result.status).to.equal(0);
    for (const name of tools) {
      const text = readFileSync(join(toolsDir, name), "utf8");
      expect(text, name).to.match(/^set -Eeuo pipefail$/m);
      expect(text, name).not.to.match(/shellcheck disable/);
      expect(text.trimEnd().split("\n").at(-1), name).to.equal('main "$@"');
    }
  });

  it("when keel-backup looks for its layout, then it reads the file the backups step installs", () => {
    const tool = readFileSync(join(root, "provisioning", "server", "keel-backup.sh"), "utf8");
    expect(tool).to.include(`source "\${KEEL_BACKUP_LAYOUT:-${BACKUP_LAYOUT_FILE}}"`);
  });

  it("when shellcheck is configured, then nothing is excluded", () => {
    const rc = readFileSync(join(root, ".shellcheckrc"), "utf8");
    expect(rc).not.to.match(/^\s*disable/m);
    for (const name of scripts) {
      expect(readFileSync(join(scriptsDir, name), "utf8"), name).not.to.match(/shellcheck disable/);
    }
  });

  for (const step of STEP_NAMES) {
    it(`when ${step}.sh is read, then it is strict, sources the library and ends with main "$@"`, () => {
      const text = readFileSync(join(scriptsDir, `${step}.sh`), "utf8");
      const lines = text.trimEnd().split("\n");
      expect(lines[0]).to.equal("#!/usr/bin/env bash");
      expect(text).to.match(/^set -Eeuo pipefail$/m);
      expect(text).to.match(/^source "\$1\/lib\.sh"$/m);
      expect(text).to.match(/^\s+keel_start \w+ "\$1"$/m);
      expect(text).to.match(/^\s+keel_finish$/m);
      expect(lines.at(-1)).to.equal('main "$@"');
      // Functions first: nothing is defined after main.
      const afterMain = text.slice(text.indexOf("\nmain() {") + 1);
      expect(afterMain.match(/^[a-z_]+\(\) \{$/gm)).to.deep.equal(["main() {"]);
    });
  }
});
