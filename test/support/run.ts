// Runs a command as an operator (or Pulumi) would, asynchronously so that servers the test runs in
// this process keep answering, and keeps its exit status and output.
import { spawn } from "node:child_process";

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin, which is then closed; without it stdin is empty. */
  readonly stdin?: string;
}

export function runCommand(
  program: string,
  args: readonly string[],
  options: RunOptions,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: options.cwd, env: options.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}
