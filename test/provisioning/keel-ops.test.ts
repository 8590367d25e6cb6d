// keel-ops, the operator key's one program, reads its request from SSH_ORIGINAL_COMMAND: split
// on blanks, never evaluated, every word checked before anything runs. These requests are all
// refused before keel-ops touches the system, so they run here on the host.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { expect } from "chai";

const TOOL = join(__dirname, "..", "..", "provisioning", "server", "keel-ops.sh");

function request(command: string): { code: number | null; stderr: string; stdout: string } {
  const result = spawnSync("bash", [TOOL], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, SSH_ORIGINAL_COMMAND: command },
  });
  return { code: result.status, stderr: result.stderr, stdout: result.stdout };
}

describe("keel-ops' requests", () => {
  const refused: [string, string, RegExp][] = [
    ["nothing", "", /^keel-ops: no verb given; verbs: status, releases, logs SOURCE/],
    ["a shell command", "sh -c id", /^keel-ops: unknown verb "sh"/],
    ["a command chained to a verb", "status;id", /^keel-ops: unknown verb "status;id"/],
    ["a verb with extra words", "status --all", /^keel-ops: status takes no arguments/],
    ["releases with extra words", "releases x", /^keel-ops: releases takes no arguments/],
    [
      "an unknown log source",
      "logs /etc/shadow",
      /^keel-ops: logs: unknown source "\/etc\/shadow"/,
    ],
    ["a substitution in --grep", "logs api --grep $(id)", /^keel-ops: --grep takes up to 128/],
    ["a glob in --grep", "logs api --grep *", /^keel-ops: --grep takes up to 128/],
    ["a long look back", "logs api --since 8d", /^keel-ops: --since goes back 7 days at most/],
    ["a malformed duration", "logs api --since 1w", /^keel-ops: --since takes a duration/],
    ["no lines", "logs api --lines 0", /^keel-ops: --lines takes a number from 1 to 10000/],
    ["too many lines", "logs api --lines 10001", /^keel-ops: --lines takes a number/],
    ["an unknown option", "logs api --output json", /^keel-ops: logs: unknown option "--output"/],
  ];
  for (const [what, command, said] of refused) {
    it(`when asked ${what}, then it refuses with exit status 2 and says why`, () => {
      const result = request(command);
      expect(result.stderr).to.match(said);
      expect(result.stdout).to.equal("");
      expect(result.code).to.equal(2);
    });
  }
});
