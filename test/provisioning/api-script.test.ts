// The api step's bookkeeping that needs no server: the JWT key ring it keeps (jwt_ring_next in
// api.sh, run by bash here) and the order in which it revokes rotated secrets.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { parseKeyRing } from "../../api/src/auth/key-ring";

const scriptsDir = join(__dirname, "..", "..", "provisioning", "scripts");
const apiScript = readFileSync(join(scriptsDir, "api.sh"), "utf8");
const OLD = `OldJwtKey${"o".repeat(55)}`;
const NEW = `NewJwtKey${"n".repeat(55)}`;
const OLDER = `OlderJwtKey${"x".repeat(53)}`;
const LIFETIME = 900;
const NOW = 1_800_000_000;

describe("the api step's JWT key ring (api.sh)", () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), "keel-api-sh-"));
    copyFileSync(join(scriptsDir, "lib.sh"), join(work, "lib.sh"));
    // api.sh with its functions only, then one call of jwt_ring_next.
    const functions = apiScript.trimEnd().split("\n").slice(0, -1).join("\n");
    writeFileSync(join(work, "harness.sh"), `${functions}\nshift\njwt_ring_next "$@"\n`);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const next = (ring: string, mode: "stage" | "retire", ...keys: string[]): string => {
    const run = spawnSync(
      "bash",
      [join(work, "harness.sh"), work, mode, String(NOW), String(LIFETIME), ...keys],
      { input: ring, encoding: "utf8" },
    );
    expect(run.stderr).to.equal("");
    expect(run.status).to.equal(0);
    return run.stdout;
  };
  const entries = (ring: string) =>
    parseKeyRing(ring).map((key) => [key.retiredAt, key.secret.slice(0, 6)]);

  it("when the first key is staged on a new server, then the ring holds it in use", () => {
    expect(entries(next("", "stage", NEW))).to.deep.equal([[null, "NewJwt"]]);
  });

  it("when a new key is staged, then it and the key the instances sign with are both in use", () => {
    const ring = next(next("", "stage", OLD), "stage", NEW, OLD);
    expect(entries(ring)).to.deep.equal([
      [null, "NewJwt"],
      [null, "OldJwt"],
    ]);
  });

  it("when every instance is restarted, then the other keys in use are retired at that time, the new one stays in use", () => {
    const staged = next(next("", "stage", OLD), "stage", NEW, OLD);
    expect(entries(next(staged, "retire", NEW))).to.deep.equal([
      [NOW, "OldJwt"],
      [null, "NewJwt"],
    ]);
  });

  it("when a key was retired a token lifetime ago or more, then it is left out, a younger one is kept", () => {
    const ring = `${NOW - LIFETIME} ${OLDER}\n${NOW - LIFETIME + 1} ${OLD}\n- ${NEW}\n`;
    expect(entries(next(ring, "retire", NEW))).to.deep.equal([
      [NOW - LIFETIME + 1, "OldJwt"],
      [null, "NewJwt"],
    ]);
  });

  it("when the ring is updated again with the same keys, then its text is unchanged (nothing to install)", () => {
    const staged = next(next("", "stage", OLD), "stage", NEW, OLD);
    const retired = next(staged, "retire", NEW);
    expect(next(staged, "stage", NEW, OLD)).to.equal(staged);
    expect(next(retired, "stage", NEW)).to.equal(retired);
    expect(next(retired, "retire", NEW)).to.equal(retired);
  });

  it("when the step runs, then it retires the old password and JWT key only after every instance is restarted", () => {
    const main = apiScript.slice(apiScript.indexOf("\nmain() {"));
    const order = [
      "install_runtime",
      "roll_out",
      "retire_login_roles",
      'update_jwt_ring "${ring}"',
    ];
    const positions = order.map((call) => main.indexOf(call));
    expect(positions.every((p) => p > 0)).to.equal(true);
    expect([...positions].sort((a, b) => a - b)).to.deep.equal(positions);
  });

  it("when the step reads the JWT keys, then no secret goes onto a command line", () => {
    // Only bash builtins (printf, read) and sed reading a file handle the keys.
    const ring = apiScript.slice(
      apiScript.indexOf("env_value() {"),
      apiScript.indexOf("install_runtime() {"),
    );
    expect(ring).not.to.match(/\b(echo|awk|grep|openssl)\b/);
    expect(ring).not.to.match(/sed[^\n]*\$\{(new|running|secret|key)\}/);
  });
});
