// Keel's data promises on a real Debian 13 system, with moto behind nginx as the R2 backup
// bucket: continuous backups and point-in-time restores, an R2 outage that never stops the
// database, a rebuilt server that adopts its volume, and a lost server restored from R2 with
// at most a minute of committed rows missing.
import { rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { expect } from "chai";
import { buildRelease } from "../../provisioning/release";
import { STEP_NAMES } from "../../provisioning/steps";
import type { SecretValues, ServerValues } from "../../provisioning/values";
import { VerifyContext } from "../../tools/verify/checks";
import {
  provision,
  runStep,
  standinSecrets,
  standinValues,
  type StepRun,
} from "../../local/provision";
import { spawnSsh } from "../../local/ssh";
import { sh, waitInside } from "./remote";
import { bootStandin, type Standin } from "../../local/standin";

const ROOT = join(__dirname, "..", "..");
// The API's limits stay out of the way of the many requests these tests make; the smallest
// volume gives the smallest WAL queue (256 MB), which the outage test fills.
const STACK = {
  volumeSizeGb: 1,
  rateLimits: { apiPerMinute: 100_000, edgeApiPerSecond: 2000, edgeApiBurst: 2000 },
};

const log = (line: string): void => console.log(`      ${line}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface BackupStatus {
  lastFull: { label: string; started: number; finished: number } | null;
  lastBackupFailure: { type: string; at: number } | null;
  walChain: string;
  wal: { lastArchivedAt: number | null; lastArchivedWal?: string; lastFailedAt: number | null };
  backups: Array<{ label: string; size: number; repositorySize: number }>;
  lastDrill: {
    ok: boolean;
    started: number;
    finished: number;
    counts: Record<string, number>;
  } | null;
  replacedClusters: string[];
}

describe("Keel's data on a Debian 13 stand-in", function () {
  this.timeout(20 * 60_000);

  let standin: Standin;
  let values: ServerValues;
  let secrets: SecretValues;
  let outside: VerifyContext;

  const status = async () => JSON.parse(await sh(standin, "keel-backup-status")) as BackupStatus;
  const admin = () => ({ "x-api-key": secrets.adminApiKey });
  const systemNames = async (prefix: string) => {
    const res = await outside.api("/v1/systems?limit=500", { headers: admin() });
    expect(res.status, res.text()).to.equal(200);
    return res
      .json<{ items: Array<{ name: string }> }>()
      .items.map((item) => item.name)
      .filter((name) => name.startsWith(prefix))
      .sort();
  };
  const createSystem = async (name: string) => {
    const res = await outside.json("POST", "/v1/systems", { name, purpose: "data" }, admin());
    expect(res.status, res.text()).to.equal(201);
  };
  const psql = (sql: string) =>
    sh(standin, "runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -qtA -d keel", sql);
  /** Every committed WAL segment reaches the repository (pgbackrest check switches WAL). */
  const archiveNow = () =>
    sh(
      standin,
      "runuser -u postgres -- pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=keel check",
    );
  const restore = (target: string) =>
    runStep(standin, "restore", { ...values, restore: target }, secrets);
  const reprovision = async (v: ServerValues): Promise<StepRun[]> => {
    const started = performance.now();
    const runs = await provision(standin, v, secrets, STEP_NAMES, log);
    log(`provisioned in ${((performance.now() - started) / 1000).toFixed(1)}s`);
    return runs;
  };

  before(async () => {
    const release = await buildRelease(ROOT);
    standin = await bootStandin();
    values = standinValues(standin, release, STACK);
    secrets = standinSecrets(standin.s3, standin.backupS3);
    outside = new VerifyContext({
      url: `https://${standin.domain}:${standin.hostPort(443)}`,
      httpUrl: `http://${standin.domain}:${standin.hostPort(80)}`,
      apiKey: secrets.adminApiKey,
      ca: await standin.acmeRootPem(),
      lookup: standin.lookup,
      limits: false,
    });
    log("provisioning the stand-in (first run):");
    await reprovision(values);
  });

  after(async () => {
    rmSync(standin?.backupS3.outageFlag ?? "/nonexistent", { force: true });
    await standin?.stop();
  });

  describe("backups and restore", () => {
    it("when provisioned, then WAL is archived within a minute, pgbackrest check passes and a full backup exists", async () => {
      expect(
        (await sh(standin, `runuser -u postgres -- psql -tAc "SHOW archive_timeout"`)).trim(),
      ).to.equal("50s");
      await archiveNow();
      const state = await status();
      expect(state.lastFull?.label).to.match(/^\d{8}-\d{6}F$/);
      const full = state.backups.find((backup) => backup.label === state.lastFull?.label);
      log(
        `first full backup: ${(state.lastFull?.finished ?? 0) - (state.lastFull?.started ?? 0)}s, ` +
          `${full?.size} bytes of database, ${full?.repositorySize} bytes in the repository`,
      );
      expect(state.walChain).to.equal("whole");
      expect(state.wal.lastArchivedAt).to.be.a("number");
      expect(
        (await sh(standin, "stat -c '%a %U %G' /etc/pgbackrest/pgbackrest.conf")).trim(),
      ).to.equal("640 root postgres");
    });

    it("when a full backup has been taken, then a drill restored it into a throwaway cluster and checked it", async () => {
      // The first full backup starts a drill (OnSuccess); it may still be running.
      await waitInside(standin, "keel-backup-status | jq -r '.lastDrill.ok // false'", "true", 300);
      const state = await status();
      expect(state.lastDrill?.counts).to.include.keys("systems", "events", "audit_events");
      log(`the drill took ${(state.lastDrill?.finished ?? 0) - (state.lastDrill?.started ?? 0)}s`);
      expect(
        (await sh(standin, "ls -A /srv/keel/backup/drill 2>/dev/null || true")).trim(),
      ).to.equal("");
      const metrics = await sh(standin, "curl -s http://127.0.0.1:9188/metrics");
      expect(metrics).to.match(/^keel_backup_last_success_timestamp_seconds\{type="full"\} \d+$/m);
      expect(metrics).to.match(/^keel_restore_drill_last_success_timestamp_seconds \d+$/m);
      expect(metrics).to.match(/^keel_wal_chain_whole 1$/m);
    });

    it("when the database is restored to a time, then exactly the rows up to it come back; undo puts the replaced cluster back; latest restores everything", async () => {
      await createSystem("pitr-1-before-backup");
      await sh(standin, "systemctl start keel-backup-diff.service");
      await createSystem("pitr-2-after-backup");
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const target = (await sh(standin, "date -u +%Y-%m-%dT%H:%M:%SZ")).trim();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await createSystem("pitr-3-after-target");
      await archiveNow();
      const all = ["pitr-1-before-backup", "pitr-2-after-backup", "pitr-3-after-target"];
      expect(await systemNames("pitr-")).to.deep.equal(all);

      const toTime = await restore(target);
      log(`restore to ${target}: ${toTime.seconds.toFixed(1)}s`);
      expect(toTime.output).to.include(`restored to ${target} from backup`);
      expect(toTime.output).to.match(/row counts: orgs=\d+ .*systems=\d+/);
      expect(await systemNames("pitr-")).to.deep.equal(all.slice(0, 2));
      expect((await outside.api("/ready")).status).to.equal(200);

      const undo = await restore("undo");
      expect(undo.output).to.include("undid the last restore");
      expect(await systemNames("pitr-")).to.deep.equal(all);
      // The cluster undo put back left the kept ones; the undone one is kept in its place.
      const kept = (await status()).replacedClusters;
      expect(kept).to.have.length(1);
      expect(kept[0]).to.match(/-undone$/);

      await createSystem("pitr-4-after-undo");
      await archiveNow();
      const latest = await restore("latest");
      log(`restore to latest: ${latest.seconds.toFixed(1)}s`);
      expect(await systemNames("pitr-")).to.deep.equal([...all, "pitr-4-after-undo"]);

      // Each value runs once; clearing it lets the same value run again later.
      expect((await restore("latest")).changes).to.equal(0);
      expect((await restore("")).changes).to.equal(0);
    });

    it("when the restore target is before the oldest backup, then the step fails before changing anything", async () => {
      const before = await systemNames("pitr-");
      const error = await restore("2001-01-01T00:00:00Z").then(
        () => undefined,
        (err: Error) => err,
      );
      expect(error?.message).to.include("is before the oldest backup");
      expect(await systemNames("pitr-")).to.deep.equal(before);
      await restore("");
    });
  });

  describe("an R2 outage", () => {
    const outage = (on: boolean) => {
      if (on) writeFileSync(standin.backupS3.outageFlag, "");
      else rmSync(standin.backupS3.outageFlag, { force: true });
    };

    after(() => outage(false));

    it("when the backup bucket answers 503 while WAL piles up, then the backup unit fails loudly, WAL beyond the queue bound is dropped, the status says the chain is broken, and the database keeps serving", async () => {
      outage(true);
      const started = performance.now();
      await sh(standin, "systemctl start --no-block keel-backup-diff.service");
      // Each switch after a write closes a 16 MB segment that cannot be archived.
      const queueMb = values.backup.queueMaxMb;
      const segments = Math.ceil(queueMb / 16) + 8;
      await psql(
        `SELECT pg_logical_emit_message(false, 'keel-test', 'x'), pg_switch_wal() \\watch c=${segments} i=0.2\n`,
      );
      const dropped =
        "grep -q 'dropped WAL file' /var/log/pgbackrest/keel-archive-push-async.log && echo yes || echo no";
      const dropSeconds = (await waitInside(standin, dropped, "yes", 600)) / 1000;
      // Segments still waiting for the repository: bounded by the queue, not by the outage.
      const waiting = Number(
        (
          await sh(
            standin,
            "ls /srv/keel/postgresql/17/main/pg_wal/archive_status | grep -c '\\.ready$' || true",
          )
        ).trim(),
      );
      log(
        `${segments} segments written in the outage: dropped after ${dropSeconds.toFixed(0)}s, ` +
          `${waiting} left waiting (bound ${queueMb / 16})`,
      );
      expect(waiting).to.be.at.most(queueMb / 16);
      const chain = await status();
      expect(chain.walChain).to.equal("broken");

      await waitInside(
        standin,
        "systemctl show -p ActiveState --value keel-backup-diff.service",
        "failed",
        600,
      );
      log(`the diff backup failed after ${((performance.now() - started) / 1000).toFixed(0)}s`);
      expect(
        await sh(standin, "journalctl -u keel-backup-diff.service -p err -o cat --no-pager"),
      ).to.include("the diff backup failed");
      expect((await status()).lastBackupFailure?.type).to.equal("diff");
      const metrics = await sh(standin, "curl -s http://127.0.0.1:9188/metrics");
      expect(metrics).to.match(/^keel_backup_last_failure_timestamp_seconds \d+$/m);
      expect(metrics).to.match(/^keel_wal_chain_whole 0$/m);
      await createSystem("outage-1-during");
      expect((await outside.api("/ready")).status).to.equal(200);
    });

    it("when the bucket is back, then the watch takes a full backup, the chain is whole and archiving resumes", async () => {
      const before = (await status()).lastFull?.label;
      outage(false);
      await sh(
        standin,
        "systemctl reset-failed keel-backup-watch.service keel-backup-diff.service",
      );
      await sh(standin, "systemctl start keel-backup-watch.service");
      const after = await status();
      expect(after.lastFull?.label).to.not.equal(before);
      expect(after.walChain).to.equal("whole");
      expect(after.lastBackupFailure).to.equal(null);
      // The clusters earlier restores replaced go with the first full backup after them.
      expect(after.replacedClusters).to.deep.equal([]);
      await archiveNow();
      await sh(standin, "systemctl start keel-backup-watch.service");
      expect(await systemNames("outage-")).to.deep.equal(["outage-1-during"]);
    });
  });

  describe("a rebuilt server", () => {
    it("when the root filesystem is replaced and the volume kept, then provisioning adopts it: same rows, same certificate, no new ACME order", async () => {
      await createSystem("rebuild-1-before");
      const served = () =>
        sh(
          standin,
          `openssl s_client -connect 127.0.0.1:443 -servername ${standin.domain} </dev/null 2>/dev/null | openssl x509 -noout -serial`,
        );
      const orders = async () =>
        (await readFile(join(standin.runDir, "pebble.log"), "utf8"))
          .split("\n")
          .filter((line) => line.includes("/order-plz")).length;
      const serial = (await served()).trim();
      const ordersBefore = await orders();
      expect(ordersBefore, "pebble's log names the first order").to.be.greaterThan(0);
      const hostKey = await sh(standin, "cat /etc/ssh/ssh_host_ed25519_key.pub");

      await standin.replaceRoot("keep");
      expect(await sh(standin, "cat /etc/ssh/ssh_host_ed25519_key.pub")).to.not.equal(hostKey);
      expect((await sh(standin, "command -v psql || echo none")).trim()).to.equal("none");
      await reprovision(values);

      expect(await systemNames("rebuild-")).to.deep.equal(["rebuild-1-before"]);
      expect((await served()).trim()).to.equal(serial);
      expect(await orders()).to.equal(ordersBefore);
      const state = await status();
      expect(state.walChain).to.equal("whole");
      await archiveNow();
    });
  });

  describe("a lost server", () => {
    it("when the server and its volume are thrown away mid-write, then restoring latest on a fresh system loses at most a minute of committed rows", async () => {
      // A restore that was undone leaves a newer, abandoned timeline in the repository: the
      // restore on a new server must follow the one in use all the same.
      await sleep(1500);
      const target = (await sh(standin, "date -u +%Y-%m-%dT%H:%M:%SZ")).trim();
      await sleep(1500);
      await createSystem("lost-1-before-undo");
      await archiveNow();
      await restore(target);
      await restore("undo");
      await restore("");
      await psql("CREATE TABLE rpo_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL);\n");
      // One row every 100 ms, each printed once committed: what the host reads was committed.
      const writer = spawnSsh(
        standin.sshTarget,
        `while :; do runuser -u postgres -- psql -X -qtA -d keel -c "INSERT INTO rpo_probe (at) VALUES (clock_timestamp()) RETURNING id, (extract(epoch FROM at) * 1000)::bigint"; sleep 0.1; done`,
      );
      let lastCommitted = { id: 0, at: 0 };
      createInterface({ input: writer.stdout }).on("line", (line) => {
        const [id, at] = line.split("|").map(Number);
        if (id !== undefined && at !== undefined && id > lastCommitted.id)
          lastCommitted = { id, at };
      });
      writer.on("error", () => undefined);
      await sleep(75_000);
      const committed = lastCommitted;
      expect(committed.id, "the writer committed rows").to.be.greaterThan(300);

      const archived = await status();
      log(`before the cut: last WAL archived ${JSON.stringify(archived.wal)}`);
      const cut = performance.now();
      await standin.replaceRoot("discard");
      writer.kill();
      const rebuilt = await reprovision({ ...values, restore: "latest" });
      const seconds = (performance.now() - cut) / 1000;
      const restoreRun = rebuilt.find((run) => run.name === "restore");
      log(`the restore step said:\n${restoreRun?.output ?? "(nothing)"}`);
      expect(restoreRun?.output).to.include("restored to latest");

      const [maxId, maxAt] = (
        await psql("SELECT max(id), (extract(epoch FROM max(at)) * 1000)::bigint FROM rpo_probe;\n")
      )
        .trim()
        .split("|")
        .map(Number);
      const lost = (committed.at - (maxAt ?? 0)) / 1000;
      log(
        `RPO: last committed row ${committed.id}, restored up to ${maxId}: ${lost.toFixed(1)}s of rows lost; ` +
          `fresh system to restored API ${seconds.toFixed(0)}s (restore step ${restoreRun?.seconds.toFixed(1)}s)`,
      );
      expect(maxId).to.be.at.most(committed.id);
      expect(lost).to.be.at.most(60);
      expect((await outside.api("/ready")).status).to.equal(200);
      expect(await systemNames("rebuild-")).to.deep.equal(["rebuild-1-before"]);
      expect(await systemNames("lost-")).to.deep.equal(["lost-1-before-undo"]);
    });
  });
});
