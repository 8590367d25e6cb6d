// Runs commands and copies files over SSH the way @pulumi/command does it, with OpenSSH's own
// client: remote.Command sends its command string as one SSH "exec" request (so the remote
// user's shell runs it), pipes `stdin` and closes it, and keeps stdout, stderr and the exit
// status; remote.CopyToRemote creates the file over SFTP, where a new file gets mode
// 0666 & ~umask whatever the local file's mode is. A failure to reach the host is an error; a
// command that fails is not: its exit code comes back.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { chmod, copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKeyPath: string;
  readonly knownHostsPath: string;
}

export interface SshOptions {
  /** Piped to the command, then closed. Without it the command reads an empty stdin. */
  readonly stdin?: string | Buffer;
  /** Kills the session and throws after this long (default 15 minutes). */
  readonly timeoutMs?: number;
}

export interface SshResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** SSH itself failed (no connection, host key mismatch, connection lost): no exit code exists. */
export class SshTransportError extends Error {
  override readonly name = "SshTransportError";
}

const DEFAULT_TIMEOUT_MS = 15 * 60 * 1000;
// OpenSSH reports its own failures with this status; so can a remote command, which is why
// the client's log (-E) tells the two apart.
const SSH_CLIENT_FAILURE = 255;

/** OpenSSH's options for `target`: its key and known hosts only, no prompts, errors only. */
export function clientOptions(target: SshTarget): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    target.privateKeyPath,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${target.knownHostsPath}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=4",
    "-o",
    "LogLevel=ERROR",
  ];
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

function runClient(
  program: string,
  args: string[],
  stdin: string | Buffer,
  timeoutMs: number,
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    // The remote side may exit without reading all of stdin; that is its business.
    child.stdin.on("error", () => undefined);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr),
        timedOut,
      });
    });
    child.stdin.end(stdin);
  });
}

async function withClientLog<T>(use: (logFile: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "keel-ssh-"));
  try {
    return await use(join(dir, "client.log"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function clientLog(logFile: string): Promise<string> {
  return (await readFile(logFile, "utf8").catch(() => "")).trim();
}

function where(target: SshTarget): string {
  return `${target.user}@${target.host}:${target.port}`;
}

/** Runs `command` through the remote user's shell, as remote.Command's `create` does. */
export async function runSsh(
  target: SshTarget,
  command: string,
  options: SshOptions = {},
): Promise<SshResult> {
  if (command.trim() === "") {
    throw new Error("ssh: refusing an empty command (it would open a login shell)");
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return withClientLog(async (logFile) => {
    const args = [...clientOptions(target), "-p", String(target.port), "-E", logFile];
    // "--" before the destination: nothing after it is read as an ssh option, so the command
    // travels as the single string it is.
    args.push("--", `${target.user}@${target.host}`, command);
    const done = await runClient("ssh", args, options.stdin ?? "", timeoutMs);
    const stdout = done.stdout.toString("utf8");
    const stderr = done.stderr.toString("utf8");
    if (done.timedOut) {
      throw new Error(
        `ssh ${where(target)}: '${command}' did not finish within ${timeoutMs} ms\n` +
          `stdout (end): ${stdout.slice(-2000)}\nstderr (end): ${stderr.slice(-2000)}`,
      );
    }
    const log = await clientLog(logFile);
    if (done.code === null || (done.code === SSH_CLIENT_FAILURE && log !== "")) {
      throw new SshTransportError(
        `ssh ${where(target)} failed for '${command}': ${log || `killed by ${done.signal}`}`,
      );
    }
    return { code: done.code, stdout, stderr };
  });
}

/**
 * Starts `command` and hands back the ssh client, for output read while it runs (a session
 * that outlives the server it runs on, say). Its stdin is closed.
 */
export function spawnSsh(target: SshTarget, command: string): ChildProcessWithoutNullStreams {
  const args = [...clientOptions(target), "-p", String(target.port)];
  args.push("--", `${target.user}@${target.host}`, command);
  const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end();
  return child;
}

function sftpQuote(path: string): string {
  if (/[\n\r]/.test(path)) {
    throw new Error(`sftp: a path with a line break cannot be copied: ${JSON.stringify(path)}`);
  }
  return `"${path.replace(/[\\"*?[\]]/g, (c) => `\\${c}`)}"`;
}

/**
 * Copies one local file to `remotePath` over SFTP, as remote.CopyToRemote does with a
 * FileAsset: a new file gets 0666 & ~umask (so 0644), an existing one keeps its mode, and an
 * existing directory as `remotePath` receives the file under its own name.
 */
export async function copyToRemote(
  target: SshTarget,
  localPath: string,
  remotePath: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<void> {
  const info = await stat(localPath);
  if (!info.isFile()) {
    throw new Error(`copyFile: ${localPath} is not a regular file`);
  }
  const staging = await mkdtemp(join(tmpdir(), "keel-sftp-"));
  try {
    // OpenSSH's sftp creates the remote file with the local file's mode; the Go client that
    // CopyToRemote uses asks for none. A 0666 staging copy makes both end at 0666 & ~umask.
    const staged = join(staging, basename(localPath));
    await copyFile(localPath, staged);
    await chmod(staged, 0o666);
    const args = [...clientOptions(target), "-P", String(target.port), "-b", "-"];
    args.push("--", `${target.user}@${target.host}`);
    const batch = `put ${sftpQuote(staged)} ${sftpQuote(remotePath)}\n`;
    const done = await runClient("sftp", args, batch, timeoutMs);
    if (done.code !== 0) {
      const reason = done.timedOut ? `timed out after ${timeoutMs} ms` : `exit ${done.code}`;
      throw new Error(
        `sftp ${where(target)}: copying ${localPath} to ${remotePath} failed (${reason}): ` +
          done.stderr.toString("utf8").trim(),
      );
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
