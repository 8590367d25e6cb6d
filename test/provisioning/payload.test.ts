// The payload format and the bootstrap command, run for real with the local sh and bash.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { expect } from "chai";
import {
  decodePayload,
  encodePayload,
  shellQuote,
  stepCommand,
  type PayloadFile,
} from "../../provisioning/payload";

function run(
  command: string,
  stdin: string,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync("sh", ["-c", command], { input: stdin, encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const stepScript = (body: string): PayloadFile => ({
  path: "step.sh",
  mode: "0755",
  content: body,
});

describe("step payload", () => {
  it("when files are encoded, then decoding gives them back sorted by path", () => {
    const files: PayloadFile[] = [
      { path: "files/etc/b.conf", mode: "0644", content: "b = 2\nünïcode ✓\n" },
      { path: "files/etc/a.conf", mode: "0600", content: "a = 1\n" },
    ];
    expect(decodePayload(encodePayload(files))).to.deep.equal([files[1], files[0]]);
    expect(encodePayload(files)).to.equal(encodePayload([...files].reverse()));
  });

  for (const bad of ["/etc/passwd", "../escape", "files/../../x", "with space", ""]) {
    it(`when a path is "${bad}", then encoding refuses it`, () => {
      expect(() => encodePayload([{ path: bad, mode: "0644", content: "" }])).to.throw(
        /unsafe payload path/,
      );
    });
  }

  it("when a path appears twice, then encoding refuses it", () => {
    const f: PayloadFile = { path: "step.sh", mode: "0755", content: "" };
    expect(() => encodePayload([f, f])).to.throw(/duplicate payload path/);
  });
});

describe("bootstrap command", () => {
  it("when it runs, then the step script gets the unpacked files and its arguments", () => {
    const payload = encodePayload([
      stepScript('cat "$1/files/etc/app.conf"; shift; printf "<%s>" "$@"'),
      { path: "files/etc/app.conf", mode: "0644", content: "key = value\n" },
    ]);
    const result = run(stepCommand("demo", ["--name", "two words", "it's"], "root"), payload);
    expect(result.stderr).to.equal("");
    expect(result.status).to.equal(0);
    expect(result.stdout).to.equal("key = value\n<--name><two words><it's>");
  });

  it("when files are unpacked, then they carry the payload's modes and the directory is private", () => {
    const payload = encodePayload([
      stepScript('stat -c "%a %n" "$1" "$1/files/secret" "$1/files/public" | sed "s|$1|W|"'),
      { path: "files/secret", mode: "0600", content: "s" },
      { path: "files/public", mode: "0644", content: "p" },
    ]);
    expect(run(stepCommand("demo", [], "root"), payload).stdout).to.equal(
      "700 W\n600 W/files/secret\n644 W/files/public\n",
    );
  });

  it("when the step fails, then its exit status comes back and the temp directory is gone", () => {
    const result = run(
      stepCommand("demo", [], "root"),
      encodePayload([stepScript('printf %s "$1"; exit 7')]),
    );
    expect(result.status).to.equal(7);
    expect(result.stdout).to.match(/^\/tmp\/tmp\./);
    expect(existsSync(result.stdout)).to.equal(false);
  });

  it("when a payload line names a parent path, then the bootstrap refuses it before running anything", () => {
    const evil = `0644 ../outside ${Buffer.from("x").toString("base64")}\n`;
    const payload = encodePayload([stepScript("echo ran")]) + evil;
    const result = run(stepCommand("demo", [], "root"), payload);
    expect(result.status).to.equal(2);
    expect(result.stdout).to.equal("");
    expect(result.stderr).to.include("refusing payload path ../outside");
  });

  it("when the user is not root, then the command goes through non-interactive sudo", () => {
    expect(stepCommand("base", ["--x", "1"], "deploy")).to.match(
      /^sudo -n sh -c '.*' keel-base --x 1$/s,
    );
    expect(stepCommand("base", [], "root")).to.match(/^sh -c /);
  });

  it("when a word needs quoting, then shellQuote makes sh read it back unchanged", () => {
    for (const word of ["plain", "two words", "it's", "$HOME", "a;b|c", ""]) {
      const result = spawnSync("sh", ["-c", `printf %s ${shellQuote(word)}`], { encoding: "utf8" });
      expect(result.stdout).to.equal(word);
    }
  });
});
