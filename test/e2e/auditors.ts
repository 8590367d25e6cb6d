// The independent auditors a security reviewer runs against the server, installed in the guest
// from Debian's archive (lynis, ssh-audit, testssl.sh), and the reading of their reports.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Standin } from "../../local/standin";

export const AUDITOR_PACKAGES = ["lynis", "ssh-audit", "testssl.sh"] as const;

/** Runs a long command in the guest (the auditors take a minute or more); throws on failure. */
export async function inGuest(standin: Standin, command: string, stdin?: string): Promise<string> {
  const result = await standin.ssh(command, { stdin, timeoutMs: 10 * 60_000 });
  if (result.code !== 0) {
    throw new Error(`\`${command}\` exited ${result.code}:\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

export interface SshAuditFindings {
  /** How many algorithms the report lists: none means ssh-audit never got through. */
  readonly algorithms: number;
  readonly fail: string[];
  readonly warn: string[];
}

/** Every fail and warn note of ssh-audit's JSON report, named by algorithm. */
export function sshAuditFindings(report: string): SshAuditFindings {
  const parsed = JSON.parse(report) as Record<string, unknown>;
  const findings = { algorithms: 0, fail: [] as string[], warn: [] as string[] };
  for (const section of ["kex", "key", "enc", "mac"]) {
    const entries = (parsed[section] ?? []) as Array<{
      algorithm: string;
      notes?: { fail?: string[]; warn?: string[] };
    }>;
    findings.algorithms += entries.length;
    for (const entry of entries) {
      for (const note of entry.notes?.fail ?? []) findings.fail.push(`${entry.algorithm}: ${note}`);
      for (const note of entry.notes?.warn ?? []) findings.warn.push(`${entry.algorithm}: ${note}`);
    }
  }
  return findings;
}

export interface LynisReport {
  readonly hardeningIndex: number;
  /** "TEST-ID|text" of each warning. */
  readonly warnings: string[];
  readonly suggestions: string[];
}

/** Reads lynis's machine report (/var/log/lynis-report.dat). */
export function lynisReport(dat: string): LynisReport {
  const values = (key: string): string[] =>
    dat
      .split("\n")
      .filter((line) => line.startsWith(`${key}=`))
      .map((line) => line.slice(key.length + 1));
  const index = values("hardening_index")[0];
  if (index === undefined) throw new Error("lynis wrote no hardening index");
  const entry = (line: string): string => line.split("|").slice(0, 2).join("|");
  return {
    hardeningIndex: Number(index),
    warnings: values("warning[]").map(entry),
    suggestions: values("suggestion[]").map(entry),
  };
}

/** testssl.sh's JSON findings by id (the last one wins for ids it repeats). */
export function testsslFindings(report: string): Map<string, string> {
  const entries = JSON.parse(report) as Array<{ id: string; finding: string }>;
  return new Map(entries.map((entry) => [entry.id, entry.finding]));
}

/**
 * Builds test/e2e/go-ssh (golang.org/x/crypto/ssh from Debian's golang-golang-x-crypto-dev) and
 * runs COMMAND on the target with it; returns its output or throws with its error.
 */
export function runGoSshClient(
  target: { host: string; port: number; user: string; privateKeyPath: string },
  command: string,
): string {
  const work = mkdtempSync(join(tmpdir(), "keel-go-ssh-"));
  try {
    const binary = join(work, "go-ssh");
    execFileSync("go", ["build", "-o", binary, join(__dirname, "go-ssh", "main.go")], {
      env: {
        ...process.env,
        GO111MODULE: "off",
        GOPATH: "/usr/share/gocode",
        GOCACHE: join(work, "cache"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return execFileSync(
      binary,
      [`${target.host}:${target.port}`, target.user, target.privateKeyPath, command],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
