// Freezing a dependency: SIGSTOP of the throwaway server's processes (the kernel still accepts
// connections, nothing answers), SIGCONT to thaw. Used to prove the API's deadlines.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { track } from "./children";

/** The direct children of `pid`, read from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return (
          /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1] ===
          String(pid)
        );
      } catch {
        return false; // The process ended meanwhile.
      }
    })
    .map(Number);
}

/** The postmaster of a data directory and its backends and helpers. */
export function postgresProcesses(dataDir: string): number[] {
  const postmaster = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  return [postmaster, ...childrenOf(postmaster)];
}

/** Runs `action` with `pids` stopped, and always resumes them. */
export async function whileFrozen<T>(
  pids: readonly number[],
  action: () => Promise<T>,
): Promise<T> {
  for (const pid of pids) process.kill(pid, "SIGSTOP");
  try {
    return await action();
  } finally {
    for (const pid of pids) process.kill(pid, "SIGCONT");
  }
}

export interface S3Process {
  readonly pid: number;
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** An s3rver in a process of its own (the shared one runs inside mocha, so it cannot be frozen). */
export async function startS3Process(directory: string, bucket: string): Promise<S3Process> {
  const child = track(
    spawn(
      process.execPath,
      ["--import", "tsx", join(__dirname, "s3rver-process.ts"), directory, bucket],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    ),
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`s3rver exited with ${code}`)));
    child.stdout?.setEncoding("utf8").once("data", (line: string) => resolve(Number(line.trim())));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("s3rver has no pid");
  return {
    pid,
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
  };
}
