// A throwaway redis-server on a random port, no persistence. It can be stopped and started
// again on the same port to play an outage.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports";

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(500);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => {
      socket.destroy();
      resolve(data.toString().startsWith("+PONG"));
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export class TestRedis {
  readonly dir = mkdtempSync(join(tmpdir(), "keel-redis-"));
  port = 0;
  private child: ChildProcess | undefined;

  /** The running server's process id (to freeze it). */
  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error("redis-server is not running");
    return pid;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        this.dir,
      ],
      { stdio: "ignore" },
    );
    this.child = child;
    await waitFor("redis to answer PING", () => ping(this.port));
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    this.child = undefined;
  }

  /** Stops the server at once, synchronously (for process exit). */
  kill(): void {
    this.child?.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
