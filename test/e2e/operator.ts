// The operator's view of the stand-in: `npm run ops` with an operator key (keel:operatorKeys),
// and what that key cannot do. The platform suite provisions with the key and runs these tests.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { expect } from "chai";
import type { Standin } from "../../local/standin";
import type { SshTarget } from "../../local/ssh";
import { OPERATOR_USER } from "../../provisioning/render/operator";
import { LOCAL_TARGET_FILE } from "../../tools/ops/local-target";
import type { ReleaseEntry, ServerStatus } from "../../tools/ops/render";
import type { VerifyContext } from "../../tools/verify/checks";
import { runCommand, type Run } from "../support/run";
import { sh, statusOf, waitInside } from "./remote";
import type { ReceivedMail } from "./smtp-sink";

const ROOT = join(__dirname, "..", "..");

/** An operator's key pair and the target file `npm run ops -- --local` reads. */
export class OperatorKey {
  readonly dir = mkdtempSync(join(tmpdir(), "keel-operator-"));
  readonly identity = join(this.dir, "operator-key");
  readonly publicKey: string;

  constructor() {
    const made = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", this.identity]);
    expect(made.status, String(made.stderr)).to.equal(0);
    this.publicKey = readFileSync(`${this.identity}.pub`, "utf8").trim();
  }

  /** Points `--local` at the stand-in. */
  target(standin: Standin): void {
    const target: SshTarget = {
      ...standin.sshTarget,
      user: OPERATOR_USER,
      privateKeyPath: this.identity,
    };
    writeFileSync(join(this.dir, LOCAL_TARGET_FILE), JSON.stringify(target));
  }

  /** `npm run ops -- --local ARGS` against the stand-in. */
  ops(...args: string[]): Promise<Run> {
    return runCommand("npx", ["tsx", "tools/ops/cli.ts", "--local", ...args], {
      cwd: ROOT,
      env: { ...process.env, KEEL_LOCAL_DIR: this.dir },
    });
  }

  /** `npm run ops -- --local ARGS` left running: its output lines so far, and how to stop it. */
  background(...args: string[]): { readonly lines: string[]; stop: () => void } {
    const child = spawn("npx", ["tsx", "tools/ops/cli.ts", "--local", ...args], {
      cwd: ROOT,
      env: { ...process.env, KEEL_LOCAL_DIR: this.dir },
      stdio: ["ignore", "pipe", "ignore"],
      detached: true,
    });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
    // npx starts tsx and node under it: end the whole group.
    return { lines, stop: () => process.kill(-(child.pid ?? 0), "SIGTERM") };
  }

  /**
   * Plain OpenSSH as keel-ops with this key; `args` go before the destination. Not local/ssh.ts's
   * clientOptions: those log errors only, and these tests read the client's refusals.
   */
  ssh(standin: Standin, args: readonly string[], command?: string): Promise<Run> {
    const { host, port, knownHostsPath } = standin.sshTarget;
    return runCommand(
      "timeout",
      [
        "20",
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        String(port),
        "-i",
        this.identity,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        `UserKnownHostsFile=${knownHostsPath}`,
        ...args,
        `${OPERATOR_USER}@${host}`,
        ...(command === undefined ? [] : [command]),
      ],
      { cwd: ROOT },
    );
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface OperatorContext {
  readonly standin: Standin;
  readonly operator: OperatorKey;
  readonly outside: VerifyContext;
  readonly activeRelease: () => string;
  /** Mail the stand-in's Alertmanager sent to the test's SMTP server (keel:smtp). */
  readonly mail: () => readonly ReceivedMail[];
  /** keel:alertEmail */
  readonly alertEmail: string;
}

/** Polls `check` every second until it returns a value, for at most `seconds`. */
async function eventually<T>(
  what: string,
  seconds: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** The tests; `context` is called once the platform is provisioned. */
export function describeOperatorAccess(context: () => OperatorContext): void {
  describe("operating without SSH (npm run ops)", () => {
    it("when the operator asks for the status of the platform, then every unit, instance and backup is well and it exits 0", async () => {
      const { operator, activeRelease } = context();
      const json = await operator.ops("status", "--json");
      const status = JSON.parse(json.stdout) as ServerStatus & { problems: string[] };
      expect(status.problems).to.deep.equal([]);
      expect(json.status, json.stderr).to.equal(0);
      expect(status.failedUnits).to.deep.equal([]);
      expect(status.release.active).to.equal(activeRelease());
      expect(status.instances.map((i) => [i.instance, i.ready])).to.deep.equal([
        [1, true],
        [2, true],
      ]);
      expect(status.certificate.daysLeft).to.be.greaterThan(14);
      expect(status.backup?.lastFullAt).to.be.a("number");
      const human = await operator.ops("status");
      expect(human.status).to.equal(0);
      expect(human.stdout).to.match(/keel-api@2 +ready +database ok, redis ok, storage ok/);
      expect(human.stdout.trim().split("\n").at(-1)).to.equal("all well");
    });

    it("when Postgres stops, then status names it and the instances it makes unready, the alert fires and is mailed, and status exits 1", async () => {
      const { standin, operator, mail, alertEmail } = context();
      const stoppedAt = Date.now();
      await sh(standin, "systemctl stop postgresql@17-main");
      try {
        await waitInside(standin, statusOf("http://127.0.0.1:3002/ready"), "503", 10);
        const down = await operator.ops("status");
        expect(down.status, down.stdout).to.equal(1);
        expect(down.stdout).to.include("postgresql@17-main.service is inactive (dead)");
        expect(down.stdout).to.include("keel-api@1 is not ready (HTTP 503; failing: database)");
        expect(down.stdout).to.include("keel-api@2 is not ready (HTTP 503; failing: database)");
        // The rule: pg_up == 0 for a minute, scraped every 15 s, evaluated every 15 s.
        const alert = await eventually("KeelPostgresDown firing in ops status", 150, async () => {
          const status = JSON.parse(
            (await operator.ops("status", "--json")).stdout,
          ) as ServerStatus;
          return status.alerts?.find((a) => a.name === "KeelPostgresDown");
        });
        expect(alert).to.include({ severity: "critical", summary: "PostgreSQL does not answer" });
        const human = await operator.ops("status");
        expect(human.stdout).to.match(/^ +- alert KeelPostgresDown \(critical\) firing since /m);
        // Alertmanager waits 30 s to group alerts before its first mail.
        const sent = await eventually("the KeelPostgresDown mail", 90, () =>
          Promise.resolve(mail().find((m) => m.data.includes("KeelPostgresDown"))),
        );
        expect(sent.to).to.deep.equal([alertEmail]);
        expect(sent.data).to.match(/^Subject: .*KeelPostgresDown/m);
        console.log(
          `      alert firing and mailed ${((Date.now() - stoppedAt) / 1000).toFixed(0)} s after Postgres stopped`,
        );
      } finally {
        await sh(standin, "systemctl start postgresql@17-main");
      }
      await waitInside(standin, statusOf("http://127.0.0.1:3001/ready"), "200", 30);
      await waitInside(standin, statusOf("http://127.0.0.1:3002/ready"), "200", 30);
      // The alert resolves at the first evaluation after a scrape finds PostgreSQL up again. (A
      // backup unit that ran during the outage may stay failed until its next run: not checked.)
      let last: (ServerStatus & { problems: string[] }) | undefined;
      await eventually("KeelPostgresDown resolved", 90, async () => {
        last = JSON.parse((await operator.ops("status", "--json")).stdout) as typeof last;
        return last?.alerts?.some((a) => a.name === "KeelPostgresDown") === false
          ? true
          : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; problems: ${JSON.stringify(last?.problems)}`);
      });
      expect(last?.problems.filter((p) => /postgres|not ready/i.test(p))).to.deep.equal([]);
    });

    it("when a request is made through nginx, then logs api and logs nginx find it by its request id", async () => {
      const { operator, outside } = context();
      const id = `ops-test-${Date.now()}`;
      const answer = await outside.api("/v1/systems", { headers: { "x-request-id": id } });
      expect(answer.status).to.equal(401);
      const api = await operator.ops("logs", "api", "--since", "5m", "--grep", id);
      expect(api.status, api.stderr).to.equal(0);
      expect(api.stdout).to.match(new RegExp(`  401  GET /v1/systems  \\d+ ms  \\[${id}\\]`));
      const raw = await operator.ops("logs", "nginx", "--since", "5m", "--grep", id, "--raw");
      expect(raw.status, raw.stderr).to.equal(0);
      const lines = raw.stdout.trim().split("\n");
      expect(lines).to.have.length(1);
      expect(JSON.parse(lines[0] ?? "")).to.include({ requestId: id, status: 401 });
    });

    it("when the operator asks for the integrity log, then it shows the file integrity baselines Keel's steps took", async () => {
      const { operator } = context();
      const integrity = await operator.ops(
        "logs",
        "integrity",
        "--since",
        "7d",
        "--lines",
        "10000",
      );
      expect(integrity.status, integrity.stderr).to.equal(0);
      expect(integrity.stdout).to.match(/keel-integrity\[\d+\]: first baseline, after keel base/);
    });

    it("when the operator opens the dashboard, then Prometheus answers through the tunnel and scrapes every target", async () => {
      const { operator } = context();
      const port = 19090;
      const tunnel = operator.background("dashboard", "--listen", String(port));
      try {
        const ready = await eventually("Prometheus through the tunnel", 30, () =>
          fetch(`http://127.0.0.1:${port}/-/ready`).then(
            (r) => (r.ok ? r.text() : undefined),
            () => undefined,
          ),
        );
        expect(ready).to.match(/Prometheus Server is Ready/);
        // The backup and certificate jobs are scraped every two minutes.
        const jobs = await eventually("every target scraped and up", 150, async () => {
          const answer = (await fetch(`http://127.0.0.1:${port}/api/v1/targets`).then((r) =>
            r.json(),
          )) as { data: { activeTargets: { labels: { job: string }; health: string }[] } };
          const health = answer.data.activeTargets.map((t) => `${t.labels.job} ${t.health}`);
          return health.every((h) => h.endsWith(" up")) ? health.sort() : undefined;
        });
        expect(jobs).to.deep.equal([
          "api up",
          "api up",
          "backup up",
          "nginx up",
          "node up",
          "postgres up",
          "redis up",
          "tls up",
        ]);
      } finally {
        tunnel.stop();
      }
    });

    it("when the operator follows the API's log, then a request made through nginx shows up while it runs", async () => {
      const { operator, outside } = context();
      const id = `ops-follow-${Date.now()}`;
      const follow = operator.background("logs", "api", "--follow", "--grep", id);
      try {
        // Asked again every second: the first requests may come before the follow has started.
        const line = await eventually("the request in the followed log", 30, async () => {
          await outside.api("/v1/systems", { headers: { "x-request-id": id } });
          return follow.lines.find((l) => l.includes(id));
        });
        expect(line).to.match(new RegExp(`  401  GET /v1/systems  \\d+ ms  \\[${id}\\]`));
      } finally {
        follow.stop();
      }
    });

    it("when the operator lists the releases, then the active one is marked and when it arrived is known", async () => {
      const { operator, activeRelease } = context();
      const listed = await operator.ops("releases", "--json");
      expect(listed.status, listed.stderr).to.equal(0);
      const releases = JSON.parse(listed.stdout) as ReleaseEntry[];
      const active = releases.filter((r) => r.active);
      expect(active.map((r) => r.id)).to.deep.equal([activeRelease()]);
      expect(active[0]?.arrivedAt).to.be.a("number");
      expect(active[0]?.migrated).to.equal(true);
    });

    it("when the operator key asks for a shell, a command, a forward or a file transfer, then each is refused and nothing runs", async () => {
      const { standin, operator } = context();
      // keel-ops refuses with exit status 2; ssh itself with 255 (sshd refused the request).
      const refusals: [string, Promise<Run>, number, RegExp][] = [
        ["a shell", operator.ssh(standin, ["-T"]), 2, /keel-ops: no verb given/],
        [
          "a command",
          operator.ssh(standin, [], "touch /tmp/keel-ops-ran"),
          2,
          /unknown verb "touch"/,
        ],
        [
          "a command after a verb",
          operator.ssh(standin, [], "status;touch /tmp/keel-ops-ran"),
          2,
          /unknown verb "status;touch/,
        ],
        [
          "a substitution",
          operator.ssh(standin, [], "logs api --grep $(touch /tmp/keel-ops-ran)"),
          2,
          /--grep takes up to 128/,
        ],
        ["an unknown verb", operator.ssh(standin, [], "restart"), 2, /unknown verb "restart"/],
        [
          "a terminal",
          operator.ssh(standin, ["-tt"], "status"),
          255,
          /PTY allocation request failed/,
        ],
        [
          "a port forward",
          operator.ssh(standin, ["-W", "127.0.0.1:5432"]),
          255,
          /administratively prohibited/,
        ],
        // sshd passes no stderr of a subsystem; the audit line below shows keel-ops got it.
        ["a file transfer", operator.ssh(standin, ["-s"], "sftp"), 2, /^$/],
      ];
      for (const [what, attempt, code, said] of refusals) {
        const result = await attempt;
        expect(result.status, what).to.equal(code);
        expect(result.stderr, what).to.match(said);
      }
      expect(await sh(standin, "ls /tmp/keel-ops-ran 2>&1 || true")).to.match(/No such file/);
      const audit = await sh(standin, "journalctl -t keel-ops --since -5min -o cat");
      expect(audit).to.match(/ran: restart$/m);
      expect(audit).to.match(/ran: \/usr\/lib\/openssh\/sftp-server$/m);
    });
  });
}
