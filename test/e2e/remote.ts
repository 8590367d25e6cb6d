// Small helpers for looking inside the stand-in over SSH.
import type { Standin } from "../../local/standin";

/** Runs a command as root; returns stdout, or throws with the output when it fails. */
export async function sh(standin: Standin, command: string, stdin?: string): Promise<string> {
  const result = await standin.ssh(command, { stdin, timeoutMs: 120_000 });
  if (result.code !== 0) {
    throw new Error(`\`${command}\` exited ${result.code}:\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

/**
 * Starts UNIT once with EXECSTART in place of its own (a runtime drop-in, as a test forces what a
 * timer does); resolves with `systemctl start`'s exit code. The drop-in is gone afterwards.
 */
export async function startWithExecStart(
  standin: Standin,
  unit: string,
  execStart: string,
): Promise<number> {
  const dir = `/run/systemd/system/${unit}.d`;
  await sh(
    standin,
    `mkdir -p ${dir} && cat > ${dir}/90-test-exec-start.conf && systemctl daemon-reload`,
    `[Service]\nExecStart=\nExecStart=${execStart}\n`,
  );
  try {
    return (await standin.ssh(`systemctl start ${unit}`, { timeoutMs: 120_000 })).code;
  } finally {
    await sh(standin, `rm -f ${dir}/90-test-exec-start.conf && systemctl daemon-reload`);
  }
}

export interface UnitState {
  readonly active: string;
  readonly mainPid: number;
  /** When the unit last entered "active" (monotonic µs): changes on every (re)start. */
  readonly activeSince: number;
}

export async function unitStates(
  standin: Standin,
  units: readonly string[],
): Promise<Record<string, UnitState>> {
  const out = await sh(
    standin,
    `systemctl show --property=Id,ActiveState,MainPID,ActiveEnterTimestampMonotonic ${units.join(" ")}`,
  );
  const states: Record<string, UnitState> = {};
  for (const block of out.trim().split("\n\n")) {
    const fields = new Map(
      block
        .split("\n")
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    states[fields.get("Id") ?? ""] = {
      active: fields.get("ActiveState") ?? "",
      mainPid: Number(fields.get("MainPID")),
      activeSince: Number(fields.get("ActiveEnterTimestampMonotonic")),
    };
  }
  return states;
}

/** The release directory each API instance runs from (its working directory). */
export async function instanceReleases(standin: Standin, instances: number): Promise<string[]> {
  const releases: string[] = [];
  for (let i = 1; i <= instances; i++) {
    releases.push(
      (
        await sh(standin, `readlink /proc/$(systemctl show -p MainPID --value keel-api@${i})/cwd`)
      ).trim(),
    );
  }
  return releases;
}

/** Polls `command` inside the guest until it prints `expected`; returns the milliseconds taken. */
export async function waitInside(
  standin: Standin,
  command: string,
  expected: string,
  timeoutSeconds: number,
): Promise<number> {
  const script = `start=$(date +%s%N)
until [ "$(${command})" = "${expected}" ]; do
  [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt ${timeoutSeconds} ] || { echo timeout; exit 1; }
  sleep 0.1
done
echo $(( ($(date +%s%N) - start) / 1000000 ))`;
  const result = await standin.ssh(script, { timeoutMs: (timeoutSeconds + 60) * 1000 });
  if (result.code !== 0) {
    throw new Error(`\`${command}\` did not print ${expected} within ${timeoutSeconds}s`);
  }
  return Number(result.stdout.trim());
}

export interface ReadyBody {
  readonly status: string;
  readonly checks: Record<string, boolean>;
}

/** What API instance N answers on /ready, asked from inside the guest. */
export async function readyBody(standin: Standin, instance: number): Promise<ReadyBody> {
  return JSON.parse(
    await sh(standin, `curl -s http://127.0.0.1:300${instance}/ready`),
  ) as ReadyBody;
}

/** The HTTP status of a request made inside the guest. */
export function statusOf(url: string): string {
  return `curl -s -o /dev/null -w %{http_code} --max-time 2 ${url}`;
}
