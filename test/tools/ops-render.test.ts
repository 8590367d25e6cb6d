// What `npm run ops` makes of keel-ops' answers: the problems it names in a status, the human
// tables, and log lines a person can read.
import { expect } from "chai";
import {
  age,
  prettyLogLine,
  problems,
  renderReleases,
  renderStatus,
  type ServerStatus,
} from "../../tools/ops/render";

const NOW = 1_796_300_000;

function healthyStatus(): ServerStatus {
  return {
    server: "keel-staging",
    time: NOW,
    units: [
      { unit: "nginx.service", load: "loaded", active: "active", sub: "running" },
      { unit: "certbot.timer", load: "loaded", active: "active", sub: "waiting" },
      { unit: "keel-backup-watch.timer", load: "loaded", active: "active", sub: "running" },
      { unit: "keel-backup-metrics.socket", load: "loaded", active: "active", sub: "listening" },
      { unit: "keel-api@1.service", load: "loaded", active: "active", sub: "running" },
    ],
    failedUnits: [],
    release: { active: "0123456789abcdef", kept: ["0123456789abcdef", "fedcba9876543210"] },
    instances: [
      {
        instance: 1,
        ready: true,
        httpStatus: 200,
        checks: { database: true, redis: true, storage: true },
      },
    ],
    certificate: { host: "api.example.com", notAfter: NOW + 60 * 86400, daysLeft: 60 },
    disks: [
      {
        path: "/",
        mount: "/",
        sizeBytes: 50 * 1024 ** 3,
        usedBytes: 10 * 1024 ** 3,
        availableBytes: 40 * 1024 ** 3,
        usedPercent: 20,
      },
    ],
    memory: {
      totalBytes: 2 * 1024 ** 3,
      availableBytes: 1024 ** 3,
      swapTotalBytes: 1024 ** 3,
      swapFreeBytes: 1024 ** 3,
    },
    backup: {
      lastFullAt: NOW - 3600,
      lastDiffAt: null,
      lastFailureAt: null,
      lastWalArchivedAt: NOW - 30,
      walChainWhole: true,
      lastDrillAt: NOW - 7200,
      lastDrillFailureAt: null,
    },
    alerts: [],
  };
}

describe("npm run ops: reading keel-ops' answers", () => {
  it("when everything is well (a timer's service running included), then no problem is named", () => {
    expect(problems(healthyStatus())).to.deep.equal([]);
    const text = renderStatus(healthyStatus());
    expect(text.trim().split("\n").at(-1)).to.equal("all well");
    expect(text).to.match(/keel-api@1 +ready +database ok, redis ok, storage ok/);
    expect(text).to.include("0123456789abcdef active; 2 kept");
  });

  it("when a database outage stops Postgres, then the unit, the failed unit and each unready instance are named", () => {
    const status: ServerStatus = {
      ...healthyStatus(),
      units: [
        { unit: "postgresql@17-main.service", load: "loaded", active: "failed", sub: "failed" },
      ],
      failedUnits: ["postgresql@17-main.service", "keel-backup-diff.service"],
      instances: [
        {
          instance: 1,
          ready: false,
          httpStatus: 503,
          checks: { database: false, redis: true, storage: true },
        },
        { instance: 2, ready: false, httpStatus: 0, checks: null },
      ],
    };
    expect(problems(status)).to.deep.equal([
      "postgresql@17-main.service is failed (failed)",
      "keel-backup-diff.service failed",
      "keel-api@1 is not ready (HTTP 503; failing: database)",
      "keel-api@2 is not ready (HTTP 0)",
    ]);
    expect(renderStatus(status)).to.match(/4 problem\(s\):\n {2}- postgresql@17-main/);
  });

  it("when the certificate, a disk, the backups or the drill need attention, then each is named", () => {
    const status: ServerStatus = {
      ...healthyStatus(),
      certificate: { host: "api.example.com", notAfter: NOW + 5 * 86400, daysLeft: 5 },
      disks: [{ ...(healthyStatus().disks[0] as ServerStatus["disks"][number]), usedPercent: 91 }],
      backup: {
        lastFullAt: NOW - 86400,
        lastDiffAt: NOW - 7200,
        lastFailureAt: NOW - 60,
        lastWalArchivedAt: NOW - 30,
        walChainWhole: false,
        lastDrillAt: NOW - 90000,
        lastDrillFailureAt: NOW - 600,
      },
    };
    expect(problems(status)).to.deep.equal([
      "the certificate for api.example.com expires in 5 day(s)",
      "/ is 91 % full",
      "the last backup failed (2026-12-03 12:12:20 UTC)",
      "WAL was dropped since the last full backup: the point-in-time chain is broken",
      "the last restore drill failed (2026-12-03 12:03:20 UTC)",
    ]);
  });

  it("when nothing answers for the backups, no release is active and no backup exists, then each is named", () => {
    expect(
      problems({ ...healthyStatus(), backup: null, release: { active: null, kept: [] } }),
    ).to.deep.equal([
      "no API release is active",
      "the backup state does not answer (keel-backup-metrics.socket)",
    ]);
    const never = healthyStatus().backup;
    expect(
      problems({
        ...healthyStatus(),
        backup: { ...(never as NonNullable<typeof never>), lastFullAt: null },
      }),
    ).to.deep.equal(["no backup has succeeded yet"]);
  });

  it("when Prometheus has alerts firing, then each is named with its summary, and the overview lists them", () => {
    const status: ServerStatus = {
      ...healthyStatus(),
      alerts: [
        {
          name: "KeelPostgresDown",
          severity: "critical",
          summary: "PostgreSQL does not answer",
          since: NOW - 300,
        },
      ],
    };
    expect(problems(status)).to.deep.equal([
      "alert KeelPostgresDown (critical) firing since 2026-12-03 12:08:20 UTC: PostgreSQL does not answer",
    ]);
    expect(renderStatus(status)).to.match(/^alerts +KeelPostgresDown \(5 min ago\)$/m);
  });

  it("when Prometheus does not answer, then that is a problem: no alert could fire", () => {
    const status: ServerStatus = { ...healthyStatus(), alerts: null };
    expect(problems(status)).to.deep.equal([
      "Prometheus does not answer: no alert can fire (prometheus.service)",
    ]);
    expect(renderStatus(status)).to.match(/^alerts +unknown: Prometheus does not answer$/m);
  });

  it("when releases are listed, then each row says when it arrived and which is active", () => {
    const text = renderReleases(
      [
        { id: "0123456789abcdef", active: true, arrivedAt: NOW - 300, migrated: true },
        { id: "fedcba9876543210", active: false, arrivedAt: null, migrated: false },
      ],
      NOW,
    );
    expect(text.split("\n")[1]).to.match(
      /^0123456789abcdef +2026-12-03 12:08:20 UTC \(5 min ago\) +yes +active$/,
    );
    expect(text.split("\n")[2]).to.match(/^fedcba9876543210 +unknown +no$/);
  });

  it("when ages are shown, then they read in the largest sensible unit", () => {
    expect([30, 600, 3 * 3600, 3 * 86400].map((s) => age(NOW - s, NOW))).to.deep.equal([
      "30 s ago",
      "10 min ago",
      "3 h ago",
      "3 d ago",
    ]);
    expect(age(null, NOW)).to.equal("never");
  });

  it("when the API's, nginx's and other log lines are pretty-printed, then the request's facts come first and other lines stay as they are", () => {
    const api = JSON.stringify({
      level: "info",
      time: "2026-12-03T11:42:13.752Z",
      service: "keel-api",
      requestId: "af80acea",
      req: { method: "GET", url: "/v1/systems", ip: "127.0.0.1" },
      res: { statusCode: 401 },
      responseTime: 7,
      msg: "request completed",
    });
    expect(prettyLogLine(api)).to.equal(
      "2026-12-03T11:42:13.752Z  info  401  GET /v1/systems  7 ms  [af80acea]  request completed",
    );
    const failed = JSON.stringify({ level: 50, time: 1, msg: "boom", err: { message: "no db" } });
    expect(prettyLogLine(failed)).to.equal("1  error  boom  error: no db");
    const nginx = JSON.stringify({
      time: "2026-12-03T11:41:12+00:00",
      requestId: "d319e2e9",
      method: "POST",
      uri: "/v1/auth/login",
      status: 429,
      duration: 0.0125,
    });
    expect(prettyLogLine(nginx)).to.equal(
      "2026-12-03T11:41:12+00:00  429  POST /v1/auth/login  13 ms  [d319e2e9]",
    );
    const plain = "2026-12-03 11:41:40.124 UTC [7117] LOG:  checkpoint starting";
    expect(prettyLogLine(plain)).to.equal(plain);
    expect(prettyLogLine("{not json")).to.equal("{not json");
  });
});
