// Processes the tests spawn (built servers, migrate.js), so that an interrupted run can still
// stop every one of them.
import type { ChildProcess } from "node:child_process";

const running = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

export function killTracked(): void {
  for (const child of running) child.kill("SIGKILL");
}
