// The rendered files inside a Debian 13 tree that has Keel's server packages installed (built and
// cached by the stand-in harness): systemd scores the units merged with Debian's own, and nginx,
// sshd and nft accept the configuration — the tools and versions of the real server, no boot.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { renderStack } from "../../tools/render";
import { CIPHERS, HOST_KEY_ALGORITHMS, KEX_ALGORITHMS, MACS } from "../../provisioning/render/sshd";
import {
  ALERT_RULES_LIST,
  ALERTMANAGER_CONFIG,
  MONITORING_UNITS,
  renderAlertmanagerConfig,
  SMTP_PASSWORD_FILE,
} from "../../provisioning/render/monitoring";

const HARNESS = join(__dirname, "..", "..", "local", "standin", "standin.sh");
const STACK_FILE = join(__dirname, "fixtures", "Pulumi.golden.yaml");
const RULE_TESTS = join(__dirname, "fixtures", "alert-rules.test.yml");
const API_HOST = "api.keel-ci.dev";

interface Run {
  status: number | null;
  output: string;
}

describe("rendered files on Debian 13", function () {
  // A cold build of the tree downloads the packages (about a minute).
  this.timeout(10 * 60_000);
  let work: string;
  let root: string;

  const chroot = (...args: string[]): Run => {
    const result = spawnSync("chroot", [root, ...args], { encoding: "utf8" });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  };

  /** The exposure score systemd-analyze gives a unit of the tree (0 safe … 10 exposed). */
  const exposure = (unit: string): number => {
    const run = chroot("systemd-analyze", "security", "--offline=true", "--no-pager", unit);
    const match = /Overall exposure level for \S+: (\d+\.\d+)/.exec(run.output);
    if (match?.[1] === undefined) throw new Error(`no score for ${unit}:\n${run.output}`);
    return Number(match[1]);
  };

  /** Runs `check` with the drop-in directory of `unit` moved away: Debian's unit alone. */
  const withoutDropIn = <T>(unit: string, check: () => T): T => {
    const dir = join(root, "etc/systemd/system", `${unit}.d`);
    const aside = join(work, `${unit}.d`);
    cpSync(dir, aside, { recursive: true });
    rmSync(dir, { recursive: true });
    try {
      return check();
    } finally {
      cpSync(aside, dir, { recursive: true });
    }
  };

  before(() => {
    const archive = execFileSync(HARNESS, ["build", "--server-packages"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .at(-1);
    if (archive === undefined) throw new Error("the harness printed no archive path");
    work = mkdtempSync(join(tmpdir(), "keel-server-tree-"));
    root = join(work, "root");
    mkdirSync(root);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2g,mode=0755", "keel-server-tree", root]);
    execFileSync("sh", [
      "-c",
      'zstd -dc "$1" | tar -x --numeric-owner -C "$2"',
      "sh",
      archive,
      root,
    ]);

    const rendered = join(work, "rendered");
    renderStack("golden", STACK_FILE, rendered);
    cpSync(join(rendered, "etc"), join(root, "etc"), { recursive: true });
    // What the base step creates before the units run.
    execFileSync("chroot", [root, "groupadd", "--system", "keel"]);
    execFileSync("chroot", [root, "useradd", "--system", "--gid", "keel", "keel-api"]);
  });

  after(() => {
    if (root !== undefined) spawnSync("umount", [root]);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it("when keel-api@.service is scored, then its exposure is at most 1.5", () => {
    expect(exposure("keel-api@1.service")).to.be.at.most(1.5);
  });

  it("when keel-migrate@.service is scored, then its exposure is at most 1.5", () => {
    expect(exposure("keel-migrate@0123456789abcdef.service")).to.be.at.most(1.5);
  });

  for (const unit of [
    "nginx.service",
    "postgresql@17-main.service",
    "redis-server.service",
    "fail2ban.service",
    "certbot.service",
    "logrotate.service",
    "sysstat.service",
    "sysstat-collect.service",
    "sysstat-summary.service",
    "sysstat-rotate.service",
    ...MONITORING_UNITS,
  ]) {
    it(`when ${unit} is scored with Keel's drop-in, then it is at most 3.0 and better than Debian's`, () => {
      const dropInDir = unit.startsWith("postgresql@") ? "postgresql@.service" : unit;
      const hardened = exposure(unit);
      const stock = withoutDropIn(dropInDir, () => exposure(unit));
      console.log(`      ${unit}: ${stock} -> ${hardened}`);
      expect(hardened).to.be.at.most(3.0);
      expect(hardened).to.be.below(stock);
    });
  }

  for (const unit of [
    "keel-backup-full.service",
    "keel-backup-diff.service",
    "keel-restore-drill.service",
    "keel-backup-watch.service",
    "keel-backup-metrics@0.service",
    "keel-tls-metrics@0.service",
  ]) {
    it(`when ${unit} is scored, then its exposure is at most 2.5`, () => {
      const score = exposure(unit);
      console.log(`      ${unit}: ${score}`);
      expect(score).to.be.at.most(2.5);
    });
  }

  it("when nginx 1.26 tests the configuration, then it accepts it", () => {
    // The certificate certbot would have issued, stood in for by a self-signed one.
    const live = join(root, "etc/letsencrypt/live", API_HOST);
    mkdirSync(live, { recursive: true });
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        `/CN=${API_HOST}`,
        "-keyout",
        join(live, "privkey.pem"),
        "-out",
        join(live, "fullchain.pem"),
      ],
      { stdio: "ignore" },
    );
    const run = chroot("nginx", "-t");
    expect(run.output).to.include("test is successful");
    expect(run.status).to.equal(0);
  });

  it("when nginx tests a broken configuration, then it refuses it (the check can fail)", () => {
    const broken = join(root, "etc/nginx/keel.d/99-broken.conf");
    writeFileSync(broken, "limit_req_zone nonsense;\n");
    try {
      expect(chroot("nginx", "-t").status).to.not.equal(0);
    } finally {
      rmSync(broken);
    }
  });

  it("when sshd tests its configuration with Keel's drop-in, then it accepts it and uses its values", () => {
    chroot("ssh-keygen", "-A");
    // On the server, ssh.service's RuntimeDirectory creates it.
    mkdirSync(join(root, "run/sshd"), { recursive: true });
    const test = chroot("sshd", "-t");
    expect(test.output).to.equal("");
    expect(test.status).to.equal(0);
    const effective = chroot("sshd", "-T", "-C", "user=root,host=client,addr=198.51.100.7").output;
    expect(effective).to.match(/^passwordauthentication no$/m);
    expect(effective).to.match(/^kbdinteractiveauthentication no$/m);
    expect(effective).to.match(/^permitrootlogin without-password$/m);
    expect(effective).to.match(/^maxauthtries 3$/m);
    expect(effective).to.match(/^allowtcpforwarding no$/m);
    // Exactly Keel's algorithms: none of OpenSSH's defaults that ssh-audit flags remains.
    expect(effective).to.match(new RegExp(`^kexalgorithms ${KEX_ALGORITHMS.join(",")}$`, "m"));
    expect(effective).to.match(new RegExp(`^ciphers ${CIPHERS.join(",")}$`, "m"));
    expect(effective).to.match(new RegExp(`^macs ${MACS.join(",")}$`, "m"));
    expect(effective).to.match(
      new RegExp(`^hostkeyalgorithms ${HOST_KEY_ALGORITHMS.join(",")}$`, "m"),
    );
    expect(effective.match(/^hostkey .*$/gm)).to.deep.equal([
      "hostkey /etc/ssh/ssh_host_ed25519_key",
      "hostkey /etc/ssh/ssh_host_rsa_key",
    ]);
  });

  it("when promtool 2.53 checks Prometheus's configuration, then it and the alert rules it names are valid", () => {
    const run = chroot("promtool", "check", "config", "/etc/prometheus/prometheus.yml");
    expect(run.output).to.include("SUCCESS: /etc/prometheus/prometheus.yml is valid");
    expect(run.output).to.include(`SUCCESS: ${ALERT_RULES_LIST.length} rules found`);
    expect(run.status).to.equal(0);
  });

  it("when promtool runs the alert rules' unit tests, then every alert fires on its test series and not on the near misses", () => {
    const tests = readFileSync(RULE_TESTS, "utf8");
    // Every alert has a test in which it fires.
    for (const rule of ALERT_RULES_LIST) {
      expect(tests, rule.alert).to.match(
        new RegExp(`alertname: ${rule.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`),
      );
    }
    writeFileSync(join(root, "tmp/alert-rules.test.yml"), tests);
    const run = chroot("promtool", "test", "rules", "/tmp/alert-rules.test.yml");
    expect(run.output).to.include("SUCCESS");
    expect(run.status).to.equal(0);
  });

  it("when an alert's test expects another value, then promtool fails (the tests can fail)", () => {
    const tests = readFileSync(RULE_TESTS, "utf8").replace("33.33%", "34%");
    writeFileSync(join(root, "tmp/alert-rules.test.yml"), tests);
    const run = chroot("promtool", "test", "rules", "/tmp/alert-rules.test.yml");
    expect(run.output).to.include("FAILED");
    expect(run.status).to.not.equal(0);
  });

  it("when amtool checks Alertmanager's configuration without and with SMTP, then it accepts both", () => {
    const check = () => chroot("amtool", "check-config", ALERTMANAGER_CONFIG);
    const without = check();
    expect(without.output).to.include("SUCCESS");
    expect(without.status).to.equal(0);
    const rendered = readFileSync(join(root, ALERTMANAGER_CONFIG.slice(1)), "utf8");
    try {
      writeFileSync(join(root, SMTP_PASSWORD_FILE.slice(1)), "not-a-real-password");
      writeFileSync(
        join(root, ALERTMANAGER_CONFIG.slice(1)),
        renderAlertmanagerConfig({
          email: "ops@keel-ci.dev",
          smtp: {
            host: "smtp.keel-ci.dev",
            port: 587,
            username: "alerts",
            from: "keel@keel-ci.dev",
            requireTls: true,
          },
        }),
      );
      const withSmtp = check();
      expect(withSmtp.output).to.include("SUCCESS");
      expect(withSmtp.output).to.match(/1 receivers/);
      expect(withSmtp.status).to.equal(0);
    } finally {
      writeFileSync(join(root, ALERTMANAGER_CONFIG.slice(1)), rendered);
      rmSync(join(root, SMTP_PASSWORD_FILE.slice(1)), { force: true });
    }
  });

  it("when sshd's effective settings for keel-ops are read, then its only forwarding is the tunnel to the metrics UI", () => {
    chroot("ssh-keygen", "-A");
    mkdirSync(join(root, "run/sshd"), { recursive: true });
    const effective = chroot(
      "sshd",
      "-T",
      "-C",
      "user=keel-ops,host=client,addr=198.51.100.7",
    ).output;
    expect(effective).to.match(/^forcecommand \/usr\/local\/sbin\/keel-ops$/m);
    expect(effective).to.match(/^allowtcpforwarding local$/m);
    expect(effective).to.match(/^permitopen 127\.0\.0\.1:9090$/m);
    expect(effective).to.match(/^permitlisten none$/m);
    expect(effective).to.match(/^allowstreamlocalforwarding no$/m);
    expect(effective).to.match(/^permittty no$/m);
  });

  it("when nft checks the host firewall, then it accepts the ruleset", () => {
    const run = chroot("nft", "-c", "-f", "/etc/nftables.conf");
    expect(run.output).to.equal("");
    expect(run.status).to.equal(0);
  });
});
