// Static checks of the harness's bash: shellcheck at every severity, with nothing excluded.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const harnessDir = join(__dirname, "..", "..", "local", "standin");
const scripts = [
  "standin.sh",
  ...readdirSync(join(harnessDir, "lib")).map((name) => join("lib", name)),
];

describe("the stand-in harness scripts", function () {
  it("when shellcheck reads them, then it reports nothing at any severity", function () {
    const result = spawnSync("shellcheck", ["--severity=style", "--external-sources", ...scripts], {
      cwd: harnessDir,
      encoding: "utf8",
    });
    expect(result.error, "shellcheck must be installed").to.equal(undefined);
    expect(result.stdout + result.stderr).to.equal("");
    expect(result.status).to.equal(0);
  });

  it("when read, then no check is switched off and the entry point ends with main", function () {
    for (const script of scripts) {
      expect(readFileSync(join(harnessDir, script), "utf8"), script).to.not.match(
        /shellcheck disable/,
      );
    }
    const entry = readFileSync(join(harnessDir, "standin.sh"), "utf8").trimEnd().split("\n");
    expect(entry[0]).to.equal("#!/usr/bin/env bash");
    expect(entry).to.include("set -Eeuo pipefail");
    expect(entry.at(-1)).to.equal('main "$@"');
  });
});
