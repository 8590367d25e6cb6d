// The base step's host hardening that a container cannot show: the kernel settings checked
// against a real kernel (names on this machine's, values in a network namespace of the test's
// own), and the login shell profile run by bash and dash.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import {
  KERNEL_HARDENING,
  renderKernelHardening,
  renderShellProfile,
} from "../../provisioning/render/host";

/**
 * The Linux keys of lynis 3.1's scan profile (/etc/lynis/default.prf, `config-data=sysctl`) with
 * the values it accepts.
 */
const LYNIS_PROFILE: Readonly<Record<string, readonly number[]>> = {
  "dev.tty.ldisc_autoload": [0],
  "fs.protected_fifos": [2],
  "fs.protected_hardlinks": [1],
  "fs.protected_regular": [2],
  "fs.protected_symlinks": [1],
  "fs.suid_dumpable": [0],
  "kernel.core_uses_pid": [1],
  "kernel.ctrl-alt-del": [0],
  "kernel.dmesg_restrict": [1],
  "kernel.kptr_restrict": [2],
  "kernel.modules_disabled": [1],
  "kernel.perf_event_paranoid": [2, 3, 4],
  "kernel.randomize_va_space": [2],
  "kernel.sysrq": [0],
  "kernel.unprivileged_bpf_disabled": [1],
  "kernel.yama.ptrace_scope": [1, 2, 3],
  "net.core.bpf_jit_harden": [2],
  "net.ipv4.conf.all.accept_redirects": [0],
  "net.ipv4.conf.all.accept_source_route": [0],
  "net.ipv4.conf.all.bootp_relay": [0],
  "net.ipv4.conf.all.forwarding": [0],
  "net.ipv4.conf.all.log_martians": [1],
  "net.ipv4.conf.all.mc_forwarding": [0],
  "net.ipv4.conf.all.proxy_arp": [0],
  "net.ipv4.conf.all.rp_filter": [1],
  "net.ipv4.conf.all.send_redirects": [0],
  "net.ipv4.conf.default.accept_redirects": [0],
  "net.ipv4.conf.default.accept_source_route": [0],
  "net.ipv4.conf.default.log_martians": [1],
  "net.ipv4.icmp_echo_ignore_broadcasts": [1],
  "net.ipv4.icmp_ignore_bogus_error_responses": [1],
  "net.ipv4.tcp_syncookies": [1],
  "net.ipv4.tcp_timestamps": [0, 1],
  "net.ipv6.conf.all.accept_redirects": [0],
  "net.ipv6.conf.all.accept_source_route": [0],
  "net.ipv6.conf.all.send_redirects": [0],
  "net.ipv6.conf.default.accept_redirects": [0],
  "net.ipv6.conf.default.accept_source_route": [0],
};

/** Keys of the profile Keel does not set, and why. */
const LEFT_OUT: Readonly<Record<string, string>> = {
  "kernel.modules_disabled": "nftables and fail2ban load modules after boot",
  "net.ipv4.conf.all.mc_forwarding": "read-only; 0 unless a multicast router runs",
  "net.ipv4.tcp_timestamps": "both values pass; the kernel's default (1) stays",
  "net.ipv6.conf.all.send_redirects": "no such key in Linux",
};

describe("host hardening", () => {
  let work: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), "keel-host-"));
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  it("when the kernel settings are rendered, then each is one lynis's scan profile checks, with a value it accepts", () => {
    for (const [key, value] of Object.entries(KERNEL_HARDENING)) {
      expect(LYNIS_PROFILE[key], key).to.include(value);
    }
    const missing = Object.keys(LYNIS_PROFILE).filter((key) => !(key in KERNEL_HARDENING));
    expect(missing.sort()).to.deep.equal(Object.keys(LEFT_OUT).sort());
    expect(renderKernelHardening()).to.include("\nnet.ipv4.conf.all.send_redirects = 0\n");
  });

  it("when the per-network settings are loaded in a fresh network namespace, then each reads back as rendered", () => {
    // A network namespace has its own net.ipv4 and net.ipv6 settings: the test's to change.
    const net = Object.entries(KERNEL_HARDENING).filter(([key]) => /^net\.ipv[46]\./.test(key));
    expect(net.length).to.be.greaterThan(10);
    const file = join(work, "net.conf");
    writeFileSync(
      file,
      renderKernelHardening()
        .split("\n")
        .filter((line) => /^net\.ipv[46]\./.test(line))
        .join("\n"),
    );
    const keys = net.map(([key]) => key);
    const result = spawnSync(
      "unshare",
      ["--net", "sh", "-c", 'sysctl -q -p "$0" && sysctl -n "$@"', file, ...keys],
      { encoding: "utf8" },
    );
    expect(result.stderr).to.equal("");
    expect(result.status).to.equal(0);
    expect(result.stdout.trim().split("\n").map(Number)).to.deep.equal(
      net.map(([, value]) => value),
    );
  });

  it("when an interactive login shell reads the profile twice, then it times out idle, dumps no core and prints no error", () => {
    const profile = join(work, "keel.sh");
    writeFileSync(profile, renderShellProfile());
    const result = spawnSync(
      "bash",
      ["--norc", "-i", "-c", `. ${profile}; . ${profile}; echo "$TMOUT $(ulimit -c)"; TMOUT=0`],
      { encoding: "utf8" },
    );
    expect(result.stdout.trim()).to.equal("900 0");
    // Read-only: a user cannot switch the timeout off.
    expect(result.stderr).to.match(/TMOUT: readonly variable/);
    expect(result.stderr.match(/readonly/g)).to.have.length(1);
  });

  it("when a non-interactive shell reads the profile, then it has no idle timeout but dumps no core", () => {
    const profile = join(work, "keel.sh");
    writeFileSync(profile, renderShellProfile());
    const result = spawnSync("sh", ["-c", `. ${profile}; echo "\${TMOUT:-none} $(ulimit -c)"`], {
      encoding: "utf8",
    });
    expect(result.stderr).to.equal("");
    expect(result.stdout.trim()).to.equal("none 0");
  });
});
