// The local Debian 13 stand-in for the droplet, as the e2e tests use it.
//
// The system work (root filesystem cache, namespace, slirp4netns, pebble, s3rver, nspawn and
// the teardown) lives in the bash harness standin/standin.sh: it is shell work, and the
// harness's EXIT trap tears everything down whatever happens to this process. The harness runs
// in its own session and treats the end of its stdin as "stop", so a mocha run that crashes,
// is killed or forgets to call stop() still leaves nothing behind. This module is the thin
// driver: it starts the harness, reads its JSON events, and runs commands over SSH exactly as
// @pulumi/command would (see ssh.ts).
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { closeSync, openSync, readFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { Socket, type LookupFunction } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { copyToRemote, runSsh, type SshOptions, type SshResult, type SshTarget } from "./ssh";

export { SshTransportError, type SshOptions, type SshResult, type SshTarget } from "./ssh";

const HARNESS = join(__dirname, "standin", "standin.sh");
const DEFAULT_BOOT_TIMEOUT_MS = 15 * 60 * 1000;
const REBOOT_TIMEOUT_MS = 4 * 60 * 1000;
const STOP_TIMEOUT_MS = 2 * 60 * 1000;
const LOG_TAIL_LINES = 40;

export interface S3Endpoint {
  /** The same http://host:port from the guest and from the host, so signed URLs work on both. */
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** The backup bucket: moto behind nginx, HTTPS with pebble's localhost certificate. */
export interface BackupS3Endpoint extends S3Endpoint {
  /** A host path: while a file is there, the bucket answers every request 503 (an outage). */
  readonly outageFlag: string;
}

export interface BootOptions {
  /** Receives the harness's progress lines (default: this process's stderr). */
  readonly log?: (line: string) => void;
  /** Guest ports to forward to the host besides 22, 80 and 443. */
  readonly forwardPorts?: readonly number[];
  /** How long boot may take, a cold build of the root filesystem included (default 15 min). */
  readonly bootTimeoutMs?: number;
}

/** A booted stand-in as the provisioning runner sees it: addresses, SSH and its services. */
export interface StandinAccess {
  readonly runId: string;
  readonly runDir: string;
  readonly namespace: string;
  /** The API's domain; it resolves to the guest inside the namespace and through `lookup`. */
  readonly domain: string;
  /** The address host-side clients come from, as the guest sees them (for sshAllowCidrs). */
  readonly clientAddress: string;
  readonly sshTarget: SshTarget;
  /** The ACME directory URL as the guest sees it (pebble, trusted by the guest's CA store). */
  readonly acmeDirectory: string;
  readonly s3: S3Endpoint;
  /** The backup bucket, as the guest reaches it (https://localhost:P). */
  readonly backupS3: BackupS3Endpoint;
  /** The harness's "ready" event: everything above, as JSON (`npm run local` keeps it). */
  readonly ready: ReadyEvent;
  /** A dns.lookup-compatible function: `*.standin.test` is 127.0.0.1, the rest is dns.lookup. */
  readonly lookup: LookupFunction;
  ssh(command: string, options?: SshOptions): Promise<SshResult>;
  copyFile(localPath: string, remotePath: string): Promise<void>;
  /** The host loopback port forwarded to `guestPort`. */
  hostPort(guestPort: number): number;
  /** The root that pebble issues certificates from, PEM. */
  acmeRootPem(): Promise<string>;
}

/** A stand-in this process booted and owns: it can reboot it and stop it. */
export interface Standin extends StandinAccess {
  /** `running` or `degraded` after the last boot, and the units that had failed then. */
  readonly systemState: string;
  readonly failedUnits: readonly string[];
  /** `systemctl reboot` in the guest; resolves when it is booted again and SSH answers. */
  reboot(): Promise<void>;
  /**
   * A rebuilt droplet: cuts the guest's power (no clean shutdown), boots a fresh root
   * filesystem with new host keys, on the old /srv/keel ("keep") or none ("discard").
   */
  replaceRoot(volume: "keep" | "discard"): Promise<void>;
  /** Powers the guest off and removes everything; safe to call more than once. */
  stop(): Promise<void>;
}

export interface ReadyEvent {
  event: "ready";
  boot: number;
  runId: string;
  runDir: string;
  namespace: string;
  harnessPid: number;
  domain: string;
  clientAddress: string;
  ports: Record<string, number>;
  ssh: SshTarget;
  acme: { directory: string; managementPort: number; tlsCaPath: string };
  s3: S3Endpoint;
  backupS3: BackupS3Endpoint;
  state: string;
  failedUnits: string[];
}

type HarnessEvent =
  | ReadyEvent
  | { event: "guest-rebooting"; boot: number }
  | { event: "guest-replaced"; boot: number }
  | { event: "guest-ready"; boot: number; state: string; failedUnits: string[] }
  | { event: "guest-failed"; boot: number; message: string }
  | { event: "guest-exited"; status: number }
  | { event: "failed"; stage: string; message: string };

function parseEvent(line: string): HarnessEvent | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === "object" && value !== null && "event" in value
      ? (value as HarnessEvent)
      : undefined;
  } catch {
    return undefined;
  }
}

export const standinLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname === "standin.test" || hostname.endsWith(".standin.test")) {
    const address: LookupAddress = { address: "127.0.0.1", family: 4 };
    if (options.all === true) {
      callback(null, [address]);
    } else {
      callback(null, address.address, address.family);
    }
    return;
  }
  dnsLookup(hostname, options, callback);
};

/** The harness process: its events, the tail of its log, and whether the event loop waits on it. */
class Harness {
  private readonly events: HarnessEvent[] = [];
  private readonly logTail: string[] = [];
  private readonly listeners = new Set<() => void>();
  private holds = 0;
  exitCode: number | null | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly child: ChildProcessWithoutNullStreams,
    log: (line: string) => void,
  ) {
    createInterface({ input: child.stderr }).on("line", (line) => {
      this.logTail.push(line);
      if (this.logTail.length > LOG_TAIL_LINES) this.logTail.shift();
      log(line);
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      const event = parseEvent(line);
      if (event) {
        this.events.push(event);
        this.notify();
      } else {
        log(`(harness stdout) ${line}`);
      }
    });
    // A harness that outlived its reader must not fail this process with EPIPE.
    child.stdin.on("error", () => undefined);
    this.exited = new Promise((resolve) => {
      child.on("exit", (code) => {
        this.exitCode = code;
        this.notify();
        resolve();
      });
    });
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  lastLines(): string {
    return this.logTail.join("\n");
  }

  /** Keeps the event loop alive while an operation waits on the harness. */
  async hold<T>(operation: () => Promise<T>): Promise<T> {
    if (this.holds++ === 0) this.setRef(true);
    try {
      return await operation();
    } finally {
      if (--this.holds === 0) this.setRef(false);
    }
  }

  private setRef(on: boolean): void {
    const handles: { ref(): unknown; unref(): unknown }[] = [this.child];
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      if (stream instanceof Socket) handles.push(stream);
    }
    for (const handle of handles) {
      if (on) handle.ref();
      else handle.unref();
    }
  }

  /** Resolves with the first event (past or future) that `matches`; rejects on failure. */
  waitFor(matches: (e: HarnessEvent) => boolean, timeoutMs: number, what: string) {
    return new Promise<HarnessEvent>((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(matches);
        const failed = this.events.find((e) => e.event === "failed");
        if (found) resolve(found);
        else if (failed?.event === "failed") {
          reject(this.error(`the stand-in failed during '${failed.stage}': ${failed.message}`));
        } else if (this.exitCode !== undefined) {
          reject(this.error(`the harness exited (${this.exitCode}) while waiting for ${what}`));
        } else return false;
        return true;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(this.error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const listener = (): void => {
        if (check()) {
          clearTimeout(timer);
          this.listeners.delete(listener);
        }
      };
      this.listeners.add(listener);
    });
  }

  error(message: string): Error {
    return new Error(`${message}\n--- last lines of the stand-in harness ---\n${this.lastLines()}`);
  }
}

const running = new Set<RunningStandin>();

function stopAllThenExit(signal: NodeJS.Signals): void {
  void Promise.allSettled([...running].map((s) => s.stop())).then(() => {
    process.exit(signal === "SIGINT" ? 130 : 143);
  });
}

function track(standin: RunningStandin): void {
  if (running.size === 0) {
    process.once("SIGINT", stopAllThenExit);
    process.once("SIGTERM", stopAllThenExit);
  }
  running.add(standin);
}

function untrack(standin: RunningStandin): void {
  running.delete(standin);
  if (running.size === 0) {
    process.removeListener("SIGINT", stopAllThenExit);
    process.removeListener("SIGTERM", stopAllThenExit);
  }
}

/** Reaches a booted stand-in from its ready event; knows nothing of the harness process. */
class StandinConnection implements StandinAccess {
  readonly runId: string;
  readonly runDir: string;
  readonly namespace: string;
  readonly domain: string;
  readonly clientAddress: string;
  readonly sshTarget: SshTarget;
  readonly acmeDirectory: string;
  readonly s3: S3Endpoint;
  readonly backupS3: BackupS3Endpoint;
  readonly lookup = standinLookup;
  private rootPem: Promise<string> | undefined;

  constructor(readonly ready: ReadyEvent) {
    this.runId = ready.runId;
    this.runDir = ready.runDir;
    this.namespace = ready.namespace;
    this.domain = ready.domain;
    this.clientAddress = ready.clientAddress;
    this.sshTarget = ready.ssh;
    this.acmeDirectory = ready.acme.directory;
    this.s3 = ready.s3;
    this.backupS3 = ready.backupS3;
  }

  protected assertUp(): void {}

  ssh(command: string, options?: SshOptions): Promise<SshResult> {
    this.assertUp();
    return runSsh(this.sshTarget, command, options);
  }

  copyFile(localPath: string, remotePath: string): Promise<void> {
    this.assertUp();
    return copyToRemote(this.sshTarget, localPath, remotePath);
  }

  hostPort(guestPort: number): number {
    const port = this.ready.ports[String(guestPort)];
    if (port === undefined) {
      throw new Error(`guest port ${guestPort} is not forwarded; add it to forwardPorts`);
    }
    return port;
  }

  acmeRootPem(): Promise<string> {
    this.assertUp();
    this.rootPem ??= fetchPem(
      this.ready.acme.managementPort,
      readFileSync(this.ready.acme.tlsCaPath, "utf8"),
    );
    return this.rootPem;
  }
}

class RunningStandin extends StandinConnection implements Standin {
  systemState: string;
  failedUnits: readonly string[];
  private boot: number;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly harness: Harness,
    ready: ReadyEvent,
    private readonly log: (line: string) => void,
  ) {
    super(ready);
    this.systemState = ready.state;
    this.failedUnits = ready.failedUnits;
    this.boot = ready.boot;
  }

  protected override assertUp(): void {
    if (this.stopped) throw new Error(`the stand-in ${this.runId} is stopped`);
  }

  async reboot(): Promise<void> {
    await this.nextBoot("a reboot", async () => {
      // sshd may go down before the session ends; the harness's events tell what happened.
      const result = await this.ssh("systemctl reboot", { timeoutMs: 60_000 }).catch(
        () => undefined,
      );
      if (result && result.code !== 0) {
        throw new Error(`systemctl reboot failed (${result.code}): ${result.stderr}`);
      }
    });
  }

  async replaceRoot(volume: "keep" | "discard"): Promise<void> {
    await this.nextBoot("a new root filesystem", () => {
      this.harness.child.stdin.write(`replace-root ${volume}-volume\n`);
      return Promise.resolve();
    });
  }

  /** Runs `trigger`, then waits until the guest has booted again and SSH answers. */
  private async nextBoot(what: string, trigger: () => Promise<void>): Promise<void> {
    this.assertUp();
    const before = this.boot;
    await this.harness.hold(async () => {
      await trigger();
      const event = await this.harness.waitFor(
        (e) =>
          ((e.event === "guest-ready" || e.event === "guest-failed") && e.boot > before) ||
          (e.event === "guest-failed" && e.boot < 0) ||
          e.event === "guest-exited",
        REBOOT_TIMEOUT_MS,
        `the guest to come back after ${what}`,
      );
      if (event.event !== "guest-ready") {
        throw this.harness.error(
          `the guest did not come back after ${what}: ${JSON.stringify(event)}`,
        );
      }
      this.boot = event.boot;
      this.systemState = event.state;
      this.failedUnits = event.failedUnits;
      const probe = await this.ssh("true", { timeoutMs: 60_000 });
      if (probe.code !== 0) throw new Error(`SSH after ${what}: exit ${probe.code}`);
    });
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutDown();
    return this.stopped;
  }

  private async shutDown(): Promise<void> {
    untrack(this);
    const { child } = this.harness;
    if (this.harness.exitCode !== undefined) return;
    if (process.env.KEEL_STANDIN_KEEP === "1") {
      this.log(
        `KEEL_STANDIN_KEEP=1: stand-in ${this.runId} stays up (harness pid ${this.ready.harnessPid}); ` +
          `see ${this.runDir} and test/e2e/README.md`,
      );
      child.stdin.end("stop\n");
      return;
    }
    await this.harness.hold(async () => {
      child.stdin.end("stop\n");
      if (!(await settlesWithin(this.harness.exited, STOP_TIMEOUT_MS))) {
        this.log(`the harness did not stop within ${STOP_TIMEOUT_MS} ms; sending SIGTERM`);
        child.kill("SIGTERM");
        if (!(await settlesWithin(this.harness.exited, STOP_TIMEOUT_MS))) {
          throw this.harness.error(`the harness (pid ${child.pid}) would not stop`);
        }
      }
      if (this.harness.exitCode !== 0) {
        throw this.harness.error(`the harness's teardown exited with ${this.harness.exitCode}`);
      }
    });
  }
}

function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([promise.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

function fetchPem(port: number, tlsCa: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = httpsGet(
      { host: "127.0.0.1", port, path: "/roots/0", ca: tlsCa, servername: "localhost" },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (response.statusCode === 200 && body.includes("BEGIN CERTIFICATE")) resolve(body);
          else reject(new Error(`pebble /roots/0 answered ${response.statusCode}: ${body}`));
        });
      },
    );
    request.setTimeout(10_000, () => request.destroy(new Error("pebble /roots/0 timed out")));
    request.on("error", reject);
  });
}

/** Boots a fresh stand-in; stop() it when done (a crash or exit of this process also does). */
export async function bootStandin(options: BootOptions = {}): Promise<Standin> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const args = ["up", ...(options.forwardPorts ?? []).flatMap((p) => ["--forward", String(p)])];
  const child = spawn("bash", [HARNESS, ...args], {
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const harness = new Harness(child, log);
  const ready = await harness.hold(async () => {
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    try {
      return await harness.waitFor(
        (e) => e.event === "ready",
        options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS,
        "the stand-in to boot",
      );
    } catch (error) {
      // The harness tears down what it started when it ends; make sure it ends, unless it
      // was asked to stay up for debugging (then it waits for `standin.sh down`).
      if (process.env.KEEL_STANDIN_KEEP !== "1") {
        child.kill("SIGTERM");
        await settlesWithin(harness.exited, STOP_TIMEOUT_MS);
      }
      throw error;
    }
  });
  const standin = new RunningStandin(harness, ready as ReadyEvent, log);
  track(standin);
  return standin;
}

/** Reaches a stand-in that another process booted (npm run local keeps its ready event). */
export function attachStandin(ready: ReadyEvent): StandinAccess {
  return new StandinConnection(ready);
}

/**
 * Boots a stand-in that outlives this process: the harness runs until SIGTERM
 * (stopDetachedStandin), its progress goes to `logFile`, and this resolves with its ready event.
 */
export async function bootDetachedStandin(
  logFile: string,
  options: Pick<BootOptions, "forwardPorts" | "bootTimeoutMs"> = {},
): Promise<ReadyEvent> {
  const args = ["up", "--until-signal"];
  for (const port of options.forwardPorts ?? []) args.push("--forward", String(port));
  const log = openSync(logFile, "a", 0o600);
  const child = spawn("bash", [HARNESS, ...args], {
    detached: true,
    stdio: ["ignore", "pipe", log],
  });
  closeSync(log);
  const { stdout } = child;
  if (stdout === null) throw new Error("the harness has no stdout");
  const tail = (): string =>
    readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n");
  try {
    const event = await new Promise<HarnessEvent>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `the stand-in did not boot within ${options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS} ms`,
            ),
          ),
        options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS,
      );
      createInterface({ input: stdout }).on("line", (line) => {
        const parsed = parseEvent(line);
        if (parsed?.event === "ready" || parsed?.event === "failed") {
          clearTimeout(timer);
          resolve(parsed);
        }
      });
      child.once("error", reject);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the harness exited (${code}) before the stand-in was ready`));
      });
    });
    if (event.event !== "ready") {
      throw new Error(
        event.event === "failed"
          ? `the stand-in failed during '${event.stage}': ${event.message}`
          : `unexpected event ${event.event}`,
      );
    }
    return event;
  } catch (error) {
    child.kill("SIGTERM");
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n--- last lines of ${logFile} ---\n${tail()}`,
      { cause: error },
    );
  } finally {
    // Later events are not needed; the harness ignores a closed stdout.
    stdout.destroy();
    child.unref();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True while the harness of `ready` runs (its pid alive, with the harness's command line). */
export function standinRunning(ready: ReadyEvent): boolean {
  if (!alive(ready.harnessPid)) return false;
  try {
    return readFileSync(`/proc/${ready.harnessPid}/cmdline`, "utf8").includes("standin.sh");
  } catch {
    return false;
  }
}

/** Stops a detached stand-in: SIGTERM to its harness, which powers off and tears down. */
export async function stopDetachedStandin(ready: ReadyEvent): Promise<void> {
  if (!standinRunning(ready)) return;
  process.kill(ready.harnessPid, "SIGTERM");
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (standinRunning(ready)) {
    if (Date.now() > deadline) {
      throw new Error(
        `the stand-in's harness (pid ${ready.harnessPid}) did not stop within ${STOP_TIMEOUT_MS} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
