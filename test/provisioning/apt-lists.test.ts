// How often the steps refresh apt's package lists (apt_update_once in lib.sh, run by bash here
// with a stand-in apt-get that records its calls).
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";

const lib = join(__dirname, "..", "..", "provisioning", "scripts", "lib.sh");

describe("refreshing apt's package lists (lib.sh)", () => {
  let work: string;
  let stamp: string;
  let calls: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), "keel-apt-lists-"));
    stamp = join(work, "apt-lists-updated");
    calls = join(work, "calls");
    writeFileSync(
      join(work, "apt-get"),
      `#!/bin/bash\nprintf '%s\\n' "\${*: -1}" >>"${calls}"\n[[ ! -e "${work}/fail" ]]\n`,
    );
    chmodSync(join(work, "apt-get"), 0o755);
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  /** One step: a bash process that sources lib.sh and installs nothing but refreshes the lists. */
  const step = () =>
    spawnSync("bash", ["-c", `set -Eeuo pipefail; source "${lib}"; apt_update_once`], {
      env: { PATH: `${work}:/usr/bin:/bin`, KEEL_APT_STAMP: stamp },
      encoding: "utf8",
    });
  const updates = () =>
    existsSync(calls) ? readFileSync(calls, "utf8").split("\n").filter(Boolean) : [];

  it("when several steps of one run need the lists, then they are refreshed once", () => {
    for (let i = 0; i < 3; i++) expect(step().status).to.equal(0);
    expect(updates()).to.deep.equal(["update"]);
    expect(existsSync(stamp)).to.equal(true);
  });

  it("when the last refresh is more than ten minutes old, then the next step refreshes them again", () => {
    expect(step().status).to.equal(0);
    const elevenMinutesAgo = new Date(Date.now() - 11 * 60_000);
    utimesSync(stamp, elevenMinutesAgo, elevenMinutesAgo);
    expect(step().status).to.equal(0);
    expect(updates()).to.deep.equal(["update", "update"]);
  });

  it("when a refresh fails, then the step fails and leaves no stamp, so the next step tries again", () => {
    writeFileSync(join(work, "fail"), "");
    expect(step().status).not.to.equal(0);
    expect(existsSync(stamp)).to.equal(false);
    rmSync(join(work, "fail"));
    expect(step().status).to.equal(0);
    expect(updates()).to.deep.equal(["update", "update"]);
  });
});
