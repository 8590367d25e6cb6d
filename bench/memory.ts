// Reading a process's memory from /proc/PID/status, shared by the benchmarks.

/** V8 gives back start-up's and a burst's garbage about 10 to 20 s after a node process goes
 * quiet (measured: RSS stays flat until then, then drops once), so idle is read after this long. */
export const IDLE_SECONDS = 30;

/** Resident memory now and at its peak since the process started (VmRSS, VmHWM), in MB. */
export function residentMb(status: string): { rss: number; peak: number } {
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}
